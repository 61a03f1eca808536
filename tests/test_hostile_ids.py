"""Ids chosen by whoever submits a job: every action and detail reaches exactly that job, or none.

Ray accepts any submission id, `zz/../victim` included; put into a URL path unencoded it is
normalised to `/api/jobs/victim/...` and the stop lands on somebody else's job. These run
against a real Ray head (conftest) and the KFP test server.
"""

from __future__ import annotations

import uuid

import pytest

from mltop.adapters.http import Endpoint, segment
from mltop.adapters.ray import RaySource
from mltop.errors import Conflict, NotFound, SourceError
from tests.test_ray_real_head import SLEEP

HOSTILE_IDS = ["zz/../{victim}", "{victim}/../{victim}", "q?x=1#{victim}", "{victim}:stop", "a%2F{victim}",
               "\x1b]52;c;aGk=\x07{victim}"]


def test_segment_encodes_one_path_segment():
    assert segment("zz/../victim") == "zz%2F..%2Fvictim"
    assert segment("..") == "%2E%2E" and segment(".") == "%2E"
    assert segment("run:terminate") == "run%3Aterminate"
    assert segment("a%2Fb") == "a%252Fb"
    assert segment("q?x#y") == "q%3Fx%23y"
    assert "/" not in segment("/" * 5 + "\x00\x1b")


@pytest.fixture
async def ray_source(ray_head):
    source = RaySource(Endpoint(name="local", url=ray_head.url))
    yield source
    await source.aclose()


@pytest.mark.ray
async def test_a_hostile_id_never_reaches_another_job(ray_head, ray_source):
    victim = ray_head.submit(SLEEP, submission_id=f"victim_{uuid.uuid4().hex[:8]}")
    ray_head.wait_for(victim, {"RUNNING"})
    # Waiting for more GPUs than exist keeps them PENDING, so they can be stopped (as running, Ray
    # fails an id with `/` at once: it names the job's log file after it).
    attackers = [ray_head.submit(SLEEP, submission_id=pattern.format(victim=victim), gpus=8) for pattern in HOSTILE_IDS]
    for attacker in attackers:
        ray_head.wait_for_id(attacker, {"PENDING"})
    data = await ray_source.fetch()
    listed = {job.id for job in data.jobs}
    assert victim in listed and set(attackers) <= listed
    for attacker in attackers:
        detail = await ray_source.job_detail(attacker)
        assert detail.job.id == attacker  # its own details, not the victim's
        # Ray's head forwards a stop (and a log read) to its job agent with the id unencoded, so
        # such an id is refused rather than sent: Ray itself would stop the victim.
        assert "passes this id on to its job agent unencoded" in detail.section("log tail (last lines)")
        with pytest.raises(Conflict) as refused:
            await ray_source.cancel_job(attacker)
        assert "refused, not sent" in str(refused.value)
    assert ray_head.status(victim) == "RUNNING"  # the other user's job was never touched


@pytest.mark.ray
async def test_unusual_but_safe_ids_are_acted_on_exactly(ray_head, ray_source):
    victim = ray_head.submit(SLEEP, submission_id=f"victim_{uuid.uuid4().hex[:8]}")
    ray_head.wait_for(victim, {"RUNNING"})
    for odd in (f"...{victim}", f"{victim}.~-_", f"{victim}..{victim}"):
        ray_head.submit(SLEEP, submission_id=odd, gpus=8)
        assert (await ray_source.job_detail(odd)).job.id == odd
        outcome = await ray_source.cancel_job(odd)
        assert outcome.accepted and odd in outcome.message
    assert ray_head.status(victim) == "RUNNING"


@pytest.mark.ray
async def test_an_id_ray_cannot_address_is_refused_not_sent(ray_head, ray_source):
    victim = ray_head.submit(SLEEP, submission_id=f"victim_{uuid.uuid4().hex[:8]}")
    ray_head.wait_for(victim, {"RUNNING"})
    # `..` is a valid Ray submission id, but no encoding of it survives the dashboard's routing.
    dots = ray_head.submit(SLEEP, submission_id="..", gpus=8)
    data = await ray_source.fetch()
    assert dots in {job.id for job in data.jobs}
    with pytest.raises(SourceError) as refused:
        await ray_source.cancel_job(dots)
    assert isinstance(refused.value, (NotFound, Conflict))
    with pytest.raises(SourceError):
        await ray_source.job_detail(dots)
    assert ray_head.status(victim) == "RUNNING"


async def test_the_cancel_key_says_why_an_id_ray_cannot_address_is_not_stopped(live_demo):
    from mltop.refresh import utcnow
    from mltop.tui.confirm import ConfirmCancel
    from mltop.widgets.jobs_table import JobsTable
    from tests.test_tui import make_app, refreshed

    sim = live_demo.ray_sim
    live_demo.server.call(lambda: sim.submit("python x.py", submission_id="zz/../raysubmit_llama70b", gpus=64))
    app = make_app(live_demo, clock=utcnow)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        table = app.query_one(JobsTable)
        assert table.select_key("ray/demo/zz/../raysubmit_llama70b")
        await pilot.press("ctrl+d")
        assert not isinstance(app.screen, ConfirmCancel)  # nothing to confirm: it will not be sent
        assert any("mltop will not stop it" in n.message for n in app._notifications)
        stopped = live_demo.server.call(lambda: [j.submission_id for j in sim.jobs.values() if j.stop_at_ms])
        assert stopped == []
