"""LangChain in-process with LangChain's own fake chat model (no network); spans at OTLP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from lumigo_opentelemetry.config import Config
from tests.helpers.data_tracing import instrumented, one, receiver, tracing

__all__ = ["receiver"]

ANSWER = '{"answer": "shipped", "api_key": "sk-live-1"}'


@pytest.fixture(autouse=True)
def _langchain() -> Iterator[None]:
    with instrumented("langchain"):
        yield


def _chain() -> Any:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("human", "Where is order {order}?")])
    return prompt | FakeListChatModel(responses=[ANSWER]) | StrOutputParser()


def test_each_step_is_a_span_nested_under_the_chain(receiver: Any) -> None:
    with tracing().tracer.start_as_current_span("request"):
        answer = _chain().invoke({"order": 7, "password": "hunter2"})
    assert answer == ANSWER  # the app gets the model's answer untouched
    spans = receiver.wait_for_spans(5)
    request = one(spans, "request")
    chain = one(spans, "RunnableSequence.workflow")
    assert chain.parent_span_id == request.span_id
    steps = [s for s in spans if s.parent_span_id == chain.span_id]
    assert sorted(s.name for s in steps) == [
        "FakeListChatModel.chat",
        "execute_task ChatPromptTemplate",
        "execute_task StrOutputParser",
    ]
    assert {s.trace_id for s in spans} == {request.trace_id}
    chain_input = json.loads(chain.attributes["traceloop.entity.input"])
    assert chain_input["inputs"] == {"order": 7, "password": "****"}
    chain_output = json.loads(chain.attributes["traceloop.entity.output"])
    # the model's JSON answer is masked inside the string that carries it
    assert json.loads(chain_output["outputs"]) == {"answer": "shipped", "api_key": "****"}
    chat = one(spans, "FakeListChatModel.chat")
    assert "Where is order 7?" in chat.attributes["gen_ai.input.messages"]
    everything = str([s.attributes for s in spans])
    assert "hunter2" not in everything and "sk-live-1" not in everything


def test_a_tool_is_a_span_and_values_are_bounded(receiver: Any) -> None:
    from langchain_core.tools import tool

    @tool
    def lookup(order_id: int) -> str:
        """Look an order up."""
        return "x" * 5000

    config = Config.from_environ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100"})
    with instrumented("langchain", config):
        assert lookup.invoke({"order_id": 3}) == "x" * 5000
    span = receiver.wait_for_spans(1)[0]
    assert span.name == "execute_tool lookup"
    assert all(len(v) <= 100 for v in span.attributes.values() if isinstance(v, str)), {
        k: len(v) for k, v in span.attributes.items() if isinstance(v, str)
    }
    assert "order_id" in span.attributes["traceloop.entity.input"]
