"""Drive a running omniroute with the official A2A Python SDK (a2a-sdk 1.x).

Env: OMNIROUTE_BASE (the gateway's base URL), OMNIROUTE_KEY, OMNIROUTE_A2A_VERSION
("1.0": the SDK's default transport; "0.3": its 0.3 compatibility transport,
chosen by leaving only the card's 0.3 interface). Exits non-zero on any failed check.
"""
import asyncio
import os
import sys

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types import (
    AgentInterface,
    CancelTaskRequest,
    GetTaskRequest,
    Role,
    SendMessageRequest,
    TaskState,
)
from a2a.utils.errors import TaskNotFoundError

BASE = os.environ["OMNIROUTE_BASE"]
KEY = os.environ["OMNIROUTE_KEY"]
VERSION = os.environ.get("OMNIROUTE_A2A_VERSION", "1.0")


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def message(text, skill, data=None):
    m = new_text_message(text, role=Role.ROLE_USER)
    if data is not None:
        m.parts.append(new_data_part(data))
    m.metadata.update({"skill": skill})
    return m


def artifact_text(task):
    return "".join(
        p.text for a in task.artifacts for p in a.parts if p.WhichOneof("content") == "text"
    )


async def main():
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    ) as http:
        card = await A2ACardResolver(http, BASE).get_agent_card()
        check(card.name == "omniroute", "card fetched from /.well-known/agent-card.json")
        check(
            [s.id for s in card.skills]
            == ["quota-management", "combo-management", "health", "smart-routing", "cost-analysis"],
            "card lists the five skills",
        )
        check(card.capabilities.streaming, "card says streaming")
        old = await A2ACardResolver(
            http, BASE, agent_card_path="/.well-known/agent.json"
        ).get_agent_card()
        check(old.name == "omniroute", "card also at /.well-known/agent.json")

        if VERSION == "0.3":
            url = card.supported_interfaces[0].url
            del card.supported_interfaces[:]
            card.supported_interfaces.append(
                AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3")
            )

        def client(**config):
            return ClientFactory(ClientConfig(httpx_client=http, **config)).create(card)

        blocking = client(streaming=False)
        transport = type(blocking._transport).__name__
        want = "CompatJsonRpcTransport" if VERSION == "0.3" else "JsonRpcTransport"
        check(transport == want, f"the SDK speaks {VERSION} ({transport})")

        # send (blocking): health
        events = [
            e async for e in blocking.send_message(
                SendMessageRequest(message=message("Is the gateway healthy?", "health"))
            )
        ]
        task = events[-1].task
        check(task.status.state == TaskState.TASK_STATE_COMPLETED, "send: health task completed")
        check("Gateway ok" in artifact_text(task), "send: health artifact text")

        # get, with a history length
        got = await blocking.get_task(GetTaskRequest(id=task.id, history_length=1))
        check(got.id == task.id and got.status.state == TaskState.TASK_STATE_COMPLETED, "get: same task, completed")
        check(len(got.history) == 1 and got.history[0].role == Role.ROLE_AGENT, "get: history length 1")

        # the quick start's skill, by plain text
        events = [
            e async for e in blocking.send_message(
                SendMessageRequest(message=new_text_message("Give me a short quota summary.", role=Role.ROLE_USER))
            )
        ]
        check("Quota summary by tier" in artifact_text(events[-1].task), "send: quota summary by intent")

        # cost-analysis and combo-management
        events = [
            e async for e in blocking.send_message(
                SendMessageRequest(message=new_text_message("How much did we spend in the last 7 days?", role=Role.ROLE_USER))
            )
        ]
        check("Spend over the last 7d" in artifact_text(events[-1].task), "send: cost analysis by intent")
        events = [
            e async for e in blocking.send_message(
                SendMessageRequest(message=message("", "combo-management", {"action": "update", "name": "coding", "strategy": "p2c", "targets": ["mock/gpt-4o-mini"]}))
            )
        ]
        combo = events[-1].task
        check(
            combo.status.state == TaskState.TASK_STATE_COMPLETED
            and "coding" in artifact_text(combo),
            "send: combo-management creates a combo",
        )

        # streaming send: smart-routing through the fake upstream's slow stream
        streaming = client(streaming=True)
        kinds, text, last = [], "", None
        async for ev in streaming.send_message(
            SendMessageRequest(message=message("count", "smart-routing", {"model": "mock/slow-stream"}))
        ):
            which = ev.WhichOneof("payload")
            kinds.append(which)
            if which == "artifact_update":
                text += "".join(
                    p.text for p in ev.artifact_update.artifact.parts if p.WhichOneof("content") == "text"
                )
            if which == "status_update":
                last = ev.status_update.status.state
        check(kinds[0] == "task", "stream: starts with the task")
        check(kinds.count("artifact_update") >= 3, f"stream: artifact chunks ({kinds.count('artifact_update')})")
        check(kinds[-1] == "status_update" and last == TaskState.TASK_STATE_COMPLETED, "stream: ends completed")
        check(len(text) > 0, f"stream: text arrived ({len(text)} chars)")

        # cancel: a task whose upstream hangs, sent without waiting
        polling = client(streaming=False, polling=True)
        events = [
            e async for e in polling.send_message(
                SendMessageRequest(message=message("wait", "smart-routing", {"model": "mock/hang"}))
            )
        ]
        pending = events[-1].task
        check(
            pending.status.state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING),
            "send (non-blocking): task still running",
        )
        canceled = await polling.cancel_task(CancelTaskRequest(id=pending.id))
        check(canceled.status.state == TaskState.TASK_STATE_CANCELED, "cancel: task canceled")
        again = await polling.get_task(GetTaskRequest(id=pending.id))
        check(again.status.state == TaskState.TASK_STATE_CANCELED, "get after cancel: canceled")

        try:
            await blocking.get_task(GetTaskRequest(id="no-such-task"))
            check(False, "unknown task raises")
        except TaskNotFoundError:
            check(True, "unknown task raises TaskNotFoundError")

        for c in (blocking, streaming, polling):
            await c.close()
    print("all checks passed")


asyncio.run(main())
