"""Config validation, reference, migrations and start-up failures of the real binary."""
import os
import socket
import subprocess

from harness import NEUROD, SOURCE_DIR, Neurod, main, run


def test_invalid_config_lists_every_error(tmp):
    path = os.path.join(tmp, "bad.yaml")
    with open(path, "w") as f:
        f.write("cluster_name: Bad Name\n"       # 1
                "roles: [control-plane, gpu]\n"  # 2
                "http:\n"                        # 3
                "  listn: 0.0.0.0:80\n"          # 4
                "  io_threads: ten\n"            # 5
                "modules:\n"                     # 6
                "  sytem: {}\n")                 # 7
    for cmd in ([NEUROD, "check-config", "--config", path], [NEUROD, "--config", path]):
        r = run(cmd)
        assert r.returncode == 2, r
        err = r.stderr
        assert "bad.yaml:1: cluster_name" in err, err
        assert "bad.yaml:2: roles" in err, err
        assert "bad.yaml:4: http.listn: unknown key 'listn'; did you mean 'listen'?" in err, err
        assert "bad.yaml:5: http.io_threads" in err and '"ten"' in err, err
        assert "bad.yaml:7: modules.sytem" in err and "did you mean 'system'" in err, err


def test_missing_config_file(tmp):
    r = run([NEUROD, "check-config", "--config", os.path.join(tmp, "nope.yaml")])
    assert r.returncode == 2
    assert "nope.yaml" in r.stderr
    # Running without --config looks at $NEUROD_CONFIG and says how to point it elsewhere.
    r = run([NEUROD], env={"NEUROD_CONFIG": os.path.join(tmp, "absent.yaml")})
    assert r.returncode == 2, r
    assert "no config file at" in r.stderr and "--config" in r.stderr, r.stderr


def test_example_configs_are_valid(tmp):
    env = {"NEUROD_DATABASE_URL": "postgresql://neurod@localhost/neurod"}
    for name in ["neurod.yaml", "control-plane.yaml", "compute-node.yaml", "neurod.reference.yaml"]:
        r = run([NEUROD, "check-config", "--config", os.path.join(SOURCE_DIR, "config", name)], env=env)
        assert r.returncode == 0, (name, r.stdout, r.stderr)
        assert "OK" in r.stdout


def test_committed_reference_is_current(tmp):
    r = run([NEUROD, "config", "reference"])
    assert r.returncode == 0, r
    with open(os.path.join(SOURCE_DIR, "config", "neurod.reference.yaml")) as f:
        committed = f.read()
    assert r.stdout == committed, ("config/neurod.reference.yaml is stale: regenerate it with "
                                   "`build/src/app/neurod config reference > config/neurod.reference.yaml`")


def test_unwritable_data_dir_gives_one_clear_message(tmp):
    blocker = os.path.join(tmp, "file")
    open(blocker, "w").close()
    d = Neurod(tmp)
    with open(d.config, "w") as f:
        f.write(f"data_dir: {blocker}/data\nhttp:\n  listen: 127.0.0.1:0\n")
    r = run([NEUROD, "--config", d.config])
    assert r.returncode == 1, r
    out = (r.stdout + r.stderr).strip().splitlines()
    errors = [l for l in out if "cannot use data_dir" in l]
    assert len(errors) == 1, out
    assert f"{blocker}/data" in errors[0]


def test_port_in_use(tmp):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    d = Neurod(tmp)
    with open(d.config, "w") as f:
        f.write(f"data_dir: {d.data_dir}\nhttp:\n  listen: 127.0.0.1:{port}\n")
    r = run([NEUROD, "--config", d.config])
    s.close()
    assert r.returncode == 1, r
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in r.stdout + r.stderr


def test_migrate_dry_run_then_apply(tmp):
    d = Neurod(tmp)
    r = run([NEUROD, "migrate", "--dry-run", "--config", d.config])
    assert r.returncode == 0, r
    assert "would apply system:0001_instance" in r.stdout, r.stdout
    r = run([NEUROD, "migrate", "--config", d.config])
    assert r.returncode == 0 and "applied system:0001_instance" in r.stdout, r
    r = run([NEUROD, "migrate", "--dry-run", "--config", d.config])
    assert "up to date" in r.stdout, r.stdout


def test_refuses_a_database_newer_than_itself(tmp):
    d = Neurod(tmp)
    assert run([NEUROD, "migrate", "--config", d.config]).returncode == 0
    db = os.path.join(d.data_dir, "neurod.db")
    subprocess.run(["sqlite3", db, "INSERT INTO schema_migrations(module, version, name, applied_at) "
                                   "VALUES ('system', 999, '0999_future', '2030-01-01')"], check=True)
    r = run([NEUROD, "--config", d.config])
    assert r.returncode == 1, r
    assert "newer neurod" in r.stdout + r.stderr, r.stdout + r.stderr


def test_compute_only_node(tmp):
    d = Neurod(tmp)
    with open(d.config, "a") as f:
        f.write("roles: [compute]\n")
    d.start()
    try:
        status, body = d.get_json("/api/v1/config")
        assert status == 200 and body["roles"] == ["compute"], body
    finally:
        d.stop()


if __name__ == "__main__":
    main([test_invalid_config_lists_every_error, test_missing_config_file, test_example_configs_are_valid,
          test_committed_reference_is_current, test_unwritable_data_dir_gives_one_clear_message, test_port_in_use,
          test_migrate_dry_run_then_apply, test_refuses_a_database_newer_than_itself, test_compute_only_node])
