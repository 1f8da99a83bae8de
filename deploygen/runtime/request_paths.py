"""The four request paths that warm a deployment up and smoke-test it, with what each must return.

Included in every generated deploy.py and imported by `generate.py smoke`, so both check exactly the
same things.
"""


def _reasoning(message: dict) -> str:
    # SGLang answers with `reasoning_content`, vLLM with `reasoning` (its name since it renamed the field).
    return (message.get("reasoning_content") or message.get("reasoning") or "").strip()


def _has_text(message: dict) -> str:
    if (message.get("content") or "").strip() or _reasoning(message):
        return ""
    return "empty assistant message"


def _thinking(message: dict) -> str:
    return _has_text(message) or ("" if _reasoning(message) else "no reasoning_content")


def _no_thinking(message: dict) -> str:
    if not (message.get("content") or "").strip():
        return "empty assistant message"
    return "reasoning_content present with thinking disabled" if _reasoning(message) else ""


def _tool_call(message: dict) -> str:
    return "" if message.get("tool_calls") else "no tool_calls"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def request_paths(long_context_words: int) -> dict[str, tuple[dict, object]]:
    """The guide's four paths, each a request body (model added by the caller) and its check.

    Each warms its own CUDA graphs and parser code paths; a check returns '' when the assistant
    message passes, else why not.
    """
    long_text = " ".join(["The quick brown fox jumps over the lazy dog."] * (long_context_words // 9 + 1))
    return {
        "chat": ({"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64}, _thinking),
        "no-thinking": (
            {
                "messages": [{"role": "user", "content": "Explain quicksort in one sentence."}],
                "max_tokens": 64,
                "chat_template_kwargs": {"enable_thinking": False},
            },
            _no_thinking,
        ),
        "long-context": (
            {"messages": [{"role": "user", "content": f"{long_text}\nSummarise the text."}], "max_tokens": 32},
            _has_text,
        ),
        "tool-call": (
            {
                "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
                "tools": [WEATHER_TOOL],
                "tool_choice": "required",
                "max_tokens": 128,
            },
            _tool_call,
        ),
    }
