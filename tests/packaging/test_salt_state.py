"""examples/salt/sp_wrapper.sls: plain YAML that installs sp_wrapper from the master's file
server at saltpeter's default wrapper path, mode 0755, and then runs `sp_wrapper --version`."""
import os
import pathlib

import yaml

SOURCE = pathlib.Path(os.environ.get("SALTPETER_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
SLS = SOURCE / "examples" / "salt" / "sp_wrapper.sls"


def state(states, sid):
    (module_function, args), = states[sid].items()
    merged = {}
    for arg in args:
        merged.update(arg)
    return module_function, merged


def test_sls_installs_and_verifies_the_wrapper():
    states = yaml.safe_load(SLS.read_text())
    fn, binary = state(states, "sp_wrapper_binary")
    assert fn == "file.managed"
    assert binary["name"] == "/usr/local/bin/sp_wrapper"
    assert binary["source"] == "salt://saltpeter/sp_wrapper"
    assert binary["mode"] == "0755"  # a string: Salt reads 755 as octal only when quoted
    fn, check = state(states, "sp_wrapper_version")
    assert fn == "cmd.run"
    assert check["name"] == binary["name"] + " --version"
    assert {"file": "sp_wrapper_binary"} in check["require"]
    fn, logdir = state(states, "sp_wrapper_logdir")
    assert fn == "file.directory" and logdir["name"] == "/var/log/sp_wrapper"


def test_default_wrapper_path_matches_the_library():
    header = (SOURCE / "libsaltpeter" / "include" / "saltpeter" / "config.hpp").read_text()
    assert "/usr/local/bin/sp_wrapper" in header
