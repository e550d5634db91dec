"""Alerts as a user meets them: `legato up` with a webhook rule, a run that fails, and the
signed message arriving at a real HTTP receiver with the run's link; `legato alerts` showing
it delivered, `legato alerts silence` and `legato alerts test`."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from tests.helpers import Daemons, cli, make_project, wait_for
from tests.observability.test_webhook_channel import Receiver

CODE = """
from legato import pipeline, task

@task(retries=0)
def load() -> None:
    raise RuntimeError("warehouse refused the connection")

@pipeline
def nightly():
    load()
"""


def project(tmp_path: Path, receiver: Receiver) -> Path:
    extra = (
        "[channels.ops]\n"
        f'kind = "webhook"\nurl = "{receiver.url}"\nsecret = {{ env = "HOOK_KEY" }}\n'
        '[alerts.nightly_failed]\ncondition = "run_failed"\nchannels = ["ops"]\n'
        'pipelines = ["night*"]\n'
    )
    return make_project(tmp_path / "p", CODE, extra=extra)


def test_a_failing_run_under_legato_up_sends_a_signed_alert_with_its_link(
    tmp_path: Path, receiver: Receiver, daemons: Daemons, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_KEY", "s3cret")
    root = project(tmp_path, receiver)
    daemon = daemons.up(root)
    daemon.wait_output("web UI at ")
    url = daemon.output().split("web UI at ", 1)[1].split("/ ", 1)[0]
    done = cli("submit", "nightly", project=root)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("queued run ", 1)[1].split()[0]
    wait_for(lambda: bool(receiver.got), timeout=30, what="the alert")
    ((headers, body),) = receiver.got
    signed = hmac.new(
        b"s3cret", headers["X-Legato-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers["X-Legato-Signature"], f"sha256={signed}")
    sent = json.loads(body)
    assert (sent["rule"], sent["run_id"], sent["task"]) == ("nightly_failed", run_id, "load")
    assert sent["url"] == f"{url}/runs/{run_id}"
    assert sent["error"] == "RuntimeError: warehouse refused the connection"

    def delivered() -> bool:
        listed = cli("alerts", "--json", project=root)
        alerts = json.loads(listed.stdout)["alerts"]
        return bool(alerts) and alerts[0]["deliveries"][0]["state"] == "sent"

    wait_for(delivered, timeout=15, what="the delivery recorded as sent")

    silenced = cli("alerts", "silence", "nightly_failed", "--for", "2h", project=root)
    assert silenced.returncode == 0 and "silenced nightly_failed until" in silenced.stdout
    shown = cli("alerts", project=root)
    assert "silenced: nightly_failed until" in shown.stdout
    tested = cli("alerts", "test", "nightly_failed", project=root, env={"HOOK_KEY": "s3cret"})
    assert tested.returncode == 0 and "ops: arrived" in tested.stdout
    assert json.loads(receiver.got[-1][1])["kind"] == "test"
    unknown = cli("alerts", "test", "nope", project=root)
    assert unknown.returncode == 2 and "no alert rule named 'nope'" in unknown.stderr


def test_legato_up_refuses_a_rule_naming_an_unknown_channel(tmp_path: Path) -> None:
    extra = '[alerts.x]\ncondition = "run_failed"\nchannels = ["pager"]\n'
    root = make_project(tmp_path / "p", CODE, extra=extra)
    done = cli("up", "--port", "0", project=root, timeout=60)
    assert done.returncode == 2
    assert "[alerts.x]: no channel named 'pager'" in done.stderr


def test_legato_web_alone_raises_no_scheduler_and_resolves_it_when_one_starts(
    tmp_path: Path, receiver: Receiver, daemons: Daemons
) -> None:
    extra = (
        f'[channels.ops]\nkind = "webhook"\nurl = "{receiver.url}"\n'
        '[alerts.nobody]\ncondition = "no_scheduler"\nafter = "2s"\nchannels = ["ops"]\n'
    )
    root = make_project(tmp_path / "p", CODE, extra=extra)
    web = daemons.up(root, command="web")
    web.wait_output("legato web: ")
    wait_for(lambda: bool(receiver.got), timeout=30, what="the no_scheduler alert")
    first = json.loads(receiver.got[0][1])
    assert (first["rule"], first["kind"]) == ("nobody", "trigger")
    daemons.up(root, command="scheduler")
    wait_for(lambda: len(receiver.got) >= 2, timeout=30, what="its resolve")
    second = json.loads(receiver.got[1][1])
    assert (second["kind"], second["dedup_key"]) == ("resolve", first["dedup_key"])


def test_two_legato_schedulers_on_postgresql_send_each_alert_once(
    tmp_path: Path, receiver: Receiver, daemons: Daemons, pg_url: str
) -> None:
    code = CODE.replace(
        "@pipeline\ndef nightly", "@pipeline(partitions=static(['a', 'b', 'c', 'd', 'e', 'f']))"
        "\ndef nightly"
    ).replace("from legato import", "from legato.partitions import static\nfrom legato import")
    extra = (
        f'[store]\nurl = "{pg_url}"\n'
        f'[channels.ops]\nkind = "webhook"\nurl = "{receiver.url}"\n'
        '[alerts.failed]\ncondition = "run_failed"\nchannels = ["ops"]\ngroup_interval = "1s"\n'
    )
    root = make_project(tmp_path / "p", code, extra=extra)
    for _ in range(2):
        daemons.up(root, command="scheduler").wait_output("Ctrl-C stops")
    for key in "abcdef":
        done = cli("submit", "nightly", "--partition", key, project=root)
        assert done.returncode == 0, done.stderr

    def keys() -> list[str]:
        out: list[str] = []
        for _, body in receiver.got:
            sent = json.loads(body)
            out += [i["dedup_key"] for i in sent["items"]] or [sent["dedup_key"]]
        return out

    wait_for(lambda: len(set(keys())) == 6, timeout=60, what="six alerts")
    from legato.services.workspace import Workspace

    with Workspace(root) as ws:  # nothing left to send: every message recorded as sent
        wait_for(
            lambda: {d.state.value for d in ws.store.alerts.recent_deliveries(100)} == {"sent"},
            timeout=30, what="every delivery recorded",
        )
    # Each alert once, by one scheduler or the other: none sent twice.
    assert sorted(keys()) == [f"failed:nightly/{k}" for k in "abcdef"]
