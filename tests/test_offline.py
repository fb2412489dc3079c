"""`check` makes no network connection: an audit hook, installed in the doctor and in its
worker through sitecustomize, records every socket connect and DNS lookup attempted."""

from __future__ import annotations


def test_check_opens_no_network_connection(cli, tmp_path):
    log = tmp_path / "net.log"
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        f"LOG = {str(log)!r}\n"
        "def hook(event, args):\n"
        "    if event in ('socket.connect', 'socket.getaddrinfo', 'socket.gethostbyname',\n"
        "                 'urllib.Request'):\n"
        "        with open(LOG, 'a') as f:\n"
        "            f.write(f'{event} {args!r}\\n')\n"
        "sys.addaudithook(hook)\n")
    marker = tmp_path / "loaded"
    (tmp_path / "sitecustomize.py").write_text(
        (tmp_path / "sitecustomize.py").read_text()
        + f"open({str(marker)!r}, 'a').write('x')\n")
    r = cli("check", "--json", env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode in (0, 1), r
    assert len(marker.read_text()) >= 2  # parent and at least one worker ran the hook
    assert not log.exists(), log.read_text()
