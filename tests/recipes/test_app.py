"""``musicprod app``: the server's safety over plain HTTP, and the page in a real browser (Debian's headless
``chromium``, driven by Playwright), both with tiny random-init checkpoints so an edit takes a second."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import numpy as np
import pytest
import soundfile as sf
import torch
from recipes_testutils import changed_span, write_song

from guidance.tasks import DEFAULT_MARGIN
from musicprod_common.checkpoint import save_pretrained
from musicprod_common.render import default_soundfont
from recipes.app_cmd import AppServer, Studio, byte_range, make_server, register
from symbolic.fgg import build_fgg, fgg_config

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
MAX_UPLOAD_MB = 1.0
MAX_SECONDS = 30.0


@pytest.fixture(scope="module")
def app_checkpoints(tiny_checkpoints: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny audio checkpoints beside a tiny FGG model, as one ``--checkpoints`` folder."""
    root = tmp_path_factory.mktemp("app-checkpoints")
    for folder in tiny_checkpoints.iterdir():
        (root / folder.name).symlink_to(folder)
    torch.manual_seed(0)
    fgg = build_fgg(fgg_config("tiny"))
    torch.nn.init.normal_(fgg.conv_out.weight, std=0.1)  # a zero output layer would predict no notes at all
    save_pretrained(fgg, fgg_config("tiny"), root / "fgg")
    return root


@pytest.fixture
def app(app_checkpoints: Path) -> Iterator[AppServer]:
    studio = Studio(checkpoints=app_checkpoints, max_upload_mb=MAX_UPLOAD_MB, max_seconds=MAX_SECONDS)
    server = make_server(studio, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    studio.close()


def request(
    server: AppServer, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """One raw request: the path goes out exactly as written (no client-side normalising of ``..``)."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, reply.read(), dict(reply.getheaders())
    finally:
        conn.close()


def upload(server: AppServer, data: bytes, name: str, kind: str = "audio") -> tuple[int, dict[str, Any]]:
    status, body, _ = request(server, "POST", f"/api/upload?kind={kind}&name={quote(name, safe='%')}", data)
    return status, json.loads(body)


def submit(server: AppServer, **params: Any) -> tuple[int, dict[str, Any]]:
    status, body, _ = request(server, "POST", "/api/jobs", json.dumps(params).encode())
    return status, json.loads(body)


def wait(server: AppServer, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = json.loads(request(server, "GET", f"/api/jobs/{job_id}")[1])
        if job["state"] in ("done", "error"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


def serves(server: AppServer) -> bool:
    status, body, _ = request(server, "GET", "/api/info")
    return status == 200 and json.loads(body)["max_upload_mb"] == MAX_UPLOAD_MB


# --------------------------------------------------------------------------------------------- plain HTTP
@pytest.mark.parametrize(
    "path, status",
    [
        ("/api/files/..%2F..%2F..%2Fetc%2Fpasswd", 400),
        ("/api/files/%2Fetc%2Fpasswd", 400),
        ("/api/files/../../../etc/passwd", 404),
        ("/api/files//etc/passwd", 404),
        ("/api/files/" + "A" * 32, 400),  # ids are lower-case hex
        ("/api/files/" + "0" * 32, 404),  # well formed, never issued
        ("/api/jobs/..", 400),
        ("/../../../../etc/passwd", 404),
        ("/recipes/app_cmd.py", 404),
        ("/static/app.html", 404),
    ],
)
def test_no_path_reaches_outside_the_app_folder(app, path, status):
    got, body, _ = request(app, "GET", path)
    assert got == status, body
    assert b"root:" not in body and b"import" not in body
    assert json.loads(body)["error"]


def test_upload_names_never_become_paths(app, tmp_path):
    data = write_song(tmp_path / "song.wav", 0.5).read_bytes()
    status, stored = upload(app, data, "..%2F..%2Fescaped.wav")
    assert status == 200 and stored["name"] == "escaped.wav"
    path = app.studio.files[stored["id"]].path
    assert path.parent == app.studio.root and path.name == f"{stored['id']}.wav"
    assert not (app.studio.root.parent / "escaped.wav").exists()


def test_an_oversized_upload_gets_413_with_a_message_and_the_server_goes_on(app):
    status, reply = upload(app, b"\0" * int(1.5 * 2**20), "big.wav")
    assert status == 413
    assert "1.5 MB" in reply["error"] and "at most 1 MB" in reply["error"]
    assert serves(app)


def test_bad_uploads_get_one_clear_line_and_the_server_goes_on(app, tmp_path):
    nan = np.zeros((4410, 2), np.float32)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 44100, subtype="FLOAT")
    sf.write(tmp_path / "quad.wav", np.zeros((4410, 4), np.float32), 44100)
    sf.write(tmp_path / "long.flac", np.zeros(int(8000 * (MAX_SECONDS + 1)), np.float32), 8000)
    bad = {
        "notes.wav": (b"this is not audio", "not a readable audio file"),
        "nan.wav": ((tmp_path / "nan.wav").read_bytes(), "NaN or infinite samples"),
        "quad.wav": ((tmp_path / "quad.wav").read_bytes(), "4 channels"),
        "long.flac": ((tmp_path / "long.flac").read_bytes(), "31.0 s is longer than this app takes (30 s)"),
        "song.txt": (b"text", "unknown audio format .txt"),
    }
    for name, (data, message) in bad.items():
        status, reply = upload(app, data, name)
        assert status == 400, name
        assert message in reply["error"] and reply["error"].startswith(name), reply
        assert str(app.studio.root) not in reply["error"]
        assert serves(app)
    assert list(app.studio.root.iterdir()) == []  # refused uploads leave nothing behind
    status, good = upload(app, write_song(tmp_path / "ok.ogg", 0.5, 22050, 1).read_bytes(), "ok.ogg")
    assert status == 200 and good["channels"] == 1 and good["sample_rate"] == 22050
    assert len(good["peaks"]) > 100 and good["spectrogram"] in app.studio.files


def test_regions_outside_the_file_and_bad_requests_are_refused_with_a_message(app, tmp_path):
    song = upload(app, write_song(tmp_path / "song.wav", 1.0).read_bytes(), "song.wav")[1]
    for region, message in [
        ((0.5, 1.5), "outside song.wav (0-1.00 s)"),
        ((0.7, 0.5), "empty or outside"),
        (("nan", 0.5), "start: nan must be between"),
        ((None, 0.5), "start: give a number"),
    ]:
        status, reply = submit(app, edit="inpaint", input=song["id"], start=region[0], end=region[1])
        assert (status, message in reply["error"]) == (400, True), reply
    assert submit(app, edit="explode", input=song["id"])[0] == 400
    assert submit(app, edit="regenerate", input="0" * 32, start=0, end=0.1)[0] == 404
    assert "not a number" in submit(app, edit="continue", input=song["id"], steps="many")[1]["error"]
    assert request(app, "POST", "/api/jobs", b"{not json")[0] == 400
    assert app.studio.jobs == {}
    assert serves(app)


def test_other_sites_cannot_drive_the_app(app):
    assert request(app, "GET", "/api/info", headers={"Host": "attacker.example:80"})[0] == 403
    status, _, _ = request(app, "POST", "/api/jobs", b"{}", headers={"Origin": "http://attacker.example"})
    assert status == 403
    own = f"http://127.0.0.1:{app.server_address[1]}"
    assert request(app, "POST", "/api/jobs", b"{}", headers={"Origin": own})[0] == 400  # reaches the checks


def test_jobs_run_one_at_a_time_in_order(app, tmp_path):
    song = upload(app, write_song(tmp_path / "song.wav", 1.0).read_bytes(), "song.wav")[1]
    running, most, order = 0, 0, []
    lock = threading.Lock()

    def slow(job) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        order.append(job.id)
        with lock:
            running -= 1

    app.studio.runners["continue"] = slow
    replies: list[dict[str, Any]] = []
    senders = [
        threading.Thread(
            target=lambda s=seed: replies.append(submit(app, edit="continue", input=song["id"], seed=s)[1])
        )
        for seed in range(4)
    ]
    for t in senders:
        t.start()
        time.sleep(0.02)
    for t in senders:
        t.join()
    assert sorted(r["position"] for r in replies)[-1] >= 2  # the last ones were told how many run before them
    assert all(wait(app, r["id"])["state"] == "done" for r in replies)
    assert most == 1 and order == list(app.studio.jobs)  # first come, first served


def test_an_edit_that_fails_reports_its_message_and_the_next_one_runs(app, tmp_path):
    song = upload(app, write_song(tmp_path / "song.wav", 1.0).read_bytes(), "song.wav")[1]
    # the tiny model's window is 0.37 s: a 0.6 s region is too long to regenerate in one
    status, job = submit(app, edit="regenerate", input=song["id"], start=0.2, end=0.8, steps=2)
    assert status == 202
    failed = wait(app, job["id"])
    assert failed["state"] == "error" and "regenerates at most" in failed["message"]
    done = wait(app, submit(app, edit="regenerate", input=song["id"], start=0.3, end=0.5, steps=2)[1]["id"])
    assert done["state"] == "done" and done["done"] == done["total"] == 2


EDITS = {
    "inpaint": dict(start=0.6, end=0.8, source="auto"),
    "regenerate": dict(start=0.6, end=0.8, strength=0.5),
    "restyle to a style": dict(edit="restyle", start=0.6, end=0.8, style="strings"),
    "restyle like a clip": dict(edit="restyle", start=0.6, end=0.8, reference="CLIP"),
    "continue": dict(source="model"),
    "transition": dict(second="CLIP", bars=2, fade=0.2),
}


@pytest.mark.parametrize("name", EDITS)
def test_every_edit_keeps_the_input_format_and_changes_only_what_it_says(app, tmp_path, name):
    params = {"edit": name, **EDITS[name], "steps": 2}
    seconds = 6.0 if name == "transition" else 1.5  # a transition needs two bars of each song
    song = write_song(tmp_path / "song.flac", seconds, 22050, 1, "PCM_16", seed=1)
    clip = write_song(tmp_path / "clip.wav", seconds, 32000, 2, "PCM_16", seed=2)  # another rate and layout
    ids = {key: upload(app, path.read_bytes(), path.name)[1]["id"] for key, path in (("song", song), ("clip", clip))}
    params = {k: ids["clip"] if v == "CLIP" else v for k, v in params.items()}
    status, job = submit(app, input=ids["song"], **params)
    assert status == 202, job
    done = wait(app, job["id"])
    assert done["state"] == "done", done["message"]
    assert done["done"] == done["total"] > 0 and done["result"]["describe"]
    result = done["result"]
    out = tmp_path / "out.flac"
    out.write_bytes(request(app, "GET", f"/api/files/{result['audio']['id']}?download=1")[1])
    assert request(app, "GET", f"/api/files/{result['plot']}")[1][:4] == b"\x89PNG"
    info = sf.info(out)
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", 22050, 1)
    x, y = sf.read(song, dtype="int16")[0], sf.read(out, dtype="int16")[0]
    region = result["region"]
    if name == "continue":
        assert len(y) > len(x) and region[0] == pytest.approx(len(x) / 22050)
    elif name != "transition":  # A up to the overlap, then B to its end
        assert len(y) == len(x)
    n = min(len(x), len(y))
    lo, hi = changed_span(x[:n], y[:n])
    assert hi > lo
    assert lo >= 22050 * (region[0] - DEFAULT_MARGIN) - 1
    if name not in ("continue", "transition"):  # those end in something new
        assert hi <= 22050 * (region[1] + DEFAULT_MARGIN) + 1


def test_files_are_served_by_byte_range_and_downloaded_under_the_result_name(app, tmp_path):
    data = write_song(tmp_path / "song.flac", 0.5).read_bytes()
    song = upload(app, data, "Lied für dich.flac")[1]
    status, body, headers = request(app, "GET", f"/api/files/{song['id']}", headers={"Range": "bytes=4-9"})
    assert (status, body, headers["Content-Range"]) == (206, data[4:10], f"bytes 4-9/{len(data)}")
    status, body, headers = request(app, "GET", f"/api/files/{song['id']}?download=1")
    assert status == 200 and body == data and headers["Content-Type"] == "audio/flac"
    assert "filename*=UTF-8''Lied%20f%C3%BCr%20dich.flac" in headers["Content-Disposition"]
    assert byte_range("bytes=-3", 10) == (7, 9) and byte_range("", 10) == (0, 9) and byte_range("bytes=12-", 10)[0] > 9


def test_the_folder_is_removed_when_the_app_stops(app_checkpoints, tmp_path):
    studio = Studio(checkpoints=app_checkpoints)
    studio.upload(write_song(tmp_path / "song.wav", 0.5).read_bytes(), "song.wav")
    assert len(list(studio.root.iterdir())) == 2  # the song and its spectrogram
    studio.close()
    assert not studio.root.exists()


@pytest.mark.skipif(not Path(default_soundfont()).is_file(), reason="no General MIDI soundfont")
def test_accompaniment_from_chords_gives_midi_and_its_rendering(app):
    status, job = submit(app, edit="accompany", chords="Am F C G", bars=4, steps=2, instrument="strings")
    assert status == 202 and job["unit"] == "windows"
    done = wait(app, job["id"])
    assert done["state"] == "done", done["message"]
    midi = request(app, "GET", f"/api/files/{done['result']['midi']['id']}?download=1")
    assert midi[0] == 200 and midi[1][:4] == b"MThd" and "accompaniment.mid" in midi[2]["Content-Disposition"]
    wav = request(app, "GET", f"/api/files/{done['result']['audio']['id']}")[1]
    assert wav[:4] == b"RIFF" and done["result"]["audio"]["duration"] > 4 * 4 * 60 / 100 - 0.1
    assert submit(app, edit="accompany", chords="C Xyz")[0] == 400


def test_the_command_prints_its_address_and_ctrl_c_removes_its_folder(app_checkpoints):
    command = [sys.executable, "-m", "recipes.cli", "app", "--port", "0", "--checkpoints", str(app_checkpoints)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        url = proc.stdout.readline().split("open ")[1].split()[0]
        folder = Path(proc.stdout.readline().split("go to ")[1].split(",")[0])
        assert url.startswith("http://127.0.0.1:") and folder.is_dir()
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert b'id="wave"' in reply.read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert not folder.exists()


def test_the_command_binds_to_this_machine_by_default():
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["app"])
    assert (args.host, args.port, args.max_upload_mb, args.max_seconds) == ("127.0.0.1", 7860, 50.0, 600.0)


# ------------------------------------------------------------------------------------------------- the browser
@pytest.fixture
def page(app):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"no {CHROMIUM}; scripts/setup.sh installs Debian's chromium")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(app.url)
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        yield page
        browser.close()
        assert errors == []


def test_the_page_loads_with_its_controls(page):
    for control in ("#file", "#wave", "#spec", "#start", "#end", "#edit", "#steps", "#seed", "#run", "#progress"):
        assert page.locator(control).count() == 1, control
    for control in ("#play", "#play-region", "#ab", "#original", "#result", "#chords", "#melody", "#accompany"):
        assert page.locator(control).count() == 1, control
    edits = page.eval_on_selector_all("#edit option", "options => options.map(o => o.value)")
    assert edits == ["inpaint", "regenerate", "restyle", "continue", "transition"]
    assert "strings" in page.eval_on_selector_all("#style option", "options => options.map(o => o.value)")
    assert "1 MB" in page.text_content("#limits") and page.is_disabled("#run")


def test_a_bad_upload_shows_its_message_and_the_page_goes_on(page, tmp_path):
    (tmp_path / "notes.wav").write_text("not audio")
    page.set_input_files("#file", str(tmp_path / "notes.wav"))
    page.wait_for_selector("#error", state="visible")
    assert "notes.wav: not a readable audio file" in page.text_content("#error")
    page.set_input_files("#file", str(write_song(tmp_path / "song.wav", 0.5)))
    page.wait_for_function("document.getElementById('song-info').textContent.includes('0.50 s')")
    assert page.is_hidden("#error") and page.is_enabled("#run")


def test_inpaint_a_dragged_region_then_listen_and_download(page, tmp_path):
    song = write_song(tmp_path / "song.wav", 1.5, 44100, 2, "PCM_16")
    page.set_input_files("#file", str(song))
    page.wait_for_function("document.getElementById('song-info').textContent.includes('1.50 s')")

    box = page.locator("#wave").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.4 * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.5 * box["width"], y, steps=5)
    page.mouse.up()
    start, end = float(page.input_value("#start")), float(page.input_value("#end"))
    assert start == pytest.approx(0.6, abs=0.02) and end == pytest.approx(0.75, abs=0.02)

    page.select_option("#edit", "inpaint")
    page.select_option("#source", "model")  # the synthetic song repeats: make sure the model fills the region
    page.fill("#steps", "2")
    page.click("#run")
    page.wait_for_selector("#download", state="visible", timeout=45000)
    assert page.evaluate("document.getElementById('progress').value") == 1
    assert "generated" in page.text_content("#describe") and page.is_visible("#plot")

    page.wait_for_function("document.getElementById('result').readyState >= 2")
    assert page.evaluate("document.getElementById('result').duration") == pytest.approx(1.5, abs=0.01)
    page.click("#ab")
    page.click("#play")
    page.wait_for_function(
        "(() => { const a = document.getElementById('result'); return !a.paused && a.currentTime > 0.1 })()"
    )
    page.click("#ab")  # back to the original, at the same place
    page.wait_for_function("!document.getElementById('original').paused")
    assert page.evaluate("document.getElementById('result').paused")

    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "song-inpaint.wav"
    out = tmp_path / "out.wav"
    download.value.save_as(out)
    assert sf.info(out).subtype == "PCM_16"
    x, y = sf.read(song, dtype="int16")[0], sf.read(out, dtype="int16")[0]
    assert x.shape == y.shape
    lo, hi = changed_span(x, y)
    assert hi > lo, "the region was not changed"
    assert lo >= 44100 * (start - DEFAULT_MARGIN) - 1 and hi <= 44100 * (end + DEFAULT_MARGIN) + 1


@pytest.mark.skipif(not Path(default_soundfont()).is_file(), reason="no General MIDI soundfont")
def test_chords_become_an_accompaniment_to_hear_and_download(page, tmp_path):
    page.fill("#chords", "Am F C G")
    page.fill("#acc-bars", "4")
    page.fill("#acc-steps", "2")
    page.click("#accompany")
    page.wait_for_selector("#acc-out", state="visible", timeout=45000)
    assert "4 bars" in page.text_content("#acc-describe")
    page.wait_for_function("document.getElementById('acc-audio').readyState >= 1")
    assert page.evaluate("document.getElementById('acc-audio').duration") > 4 * 4 * 60 / 100 - 0.1
    with page.expect_download() as download:
        page.click("#midi-download")
    assert download.value.suggested_filename == "accompaniment.mid"
    download.value.save_as(tmp_path / "a.mid")
    assert (tmp_path / "a.mid").read_bytes()[:4] == b"MThd"
