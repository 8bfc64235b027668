"""``darkyolo serve`` checks its port before it loads a model or announces itself."""

from __future__ import annotations

import socket

import pytest

from darkyolo.cli import main


def test_a_port_in_use_is_one_line_before_the_model_loads(capsys) -> None:
    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        # a model that does not exist: the port is checked first
        status = main(["serve", "--port", str(port), "--model", "no_such.cfg"])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err == (
        f"darkyolo serve: error: cannot serve on 127.0.0.1:{port}: already in use; "
        "choose another --port\n"
    )


def test_an_address_this_machine_lacks_is_one_line(capsys) -> None:
    pytest.importorskip("uvicorn")
    # 192.0.2.1 is a documentation address (TEST-NET-1): binding fails, nothing is sent
    status = main(["serve", "--host", "192.0.2.1", "--port", "8000", "--model", "no_such.cfg"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert err.startswith("darkyolo serve: error: cannot serve on 192.0.2.1:8000: ")
    assert err.endswith("; check --host\n")
