"""The warmup requests: what each one sends, and what its answer must hold.

The generator derives the list from the profile (which parsers SGLang or vLLM runs with, whether the
model thinks by default, whether it is an embedding model) and writes it into deploy.py as
`WARMUP_REQUESTS`; `generate.py smoke` derives the same list, so both check the same things.
A request is a dict: `name`, `route` (an OpenAI route), `body` (without the model), `expect` (what the
answer must hold) and optionally `filler_words` (words of filler text put before the last prompt).
"""

FILLER = "The quick brown fox jumps over the lazy dog."


def _filler(words: int) -> str:
    return " ".join([FILLER] * (words // len(FILLER.split()) + 1))


def request_body(request: dict, model: str) -> dict:
    """The JSON body to POST to the request's route: its body with the model, and the filler text put
    before the last user message (chat), the prompt (completions) or the input (embeddings)."""
    body = {"model": model, **request["body"]}
    words = request.get("filler_words", 0)
    if not words:
        return body
    filler = _filler(words)
    if "messages" in body:
        messages = [dict(m) for m in body["messages"]]
        messages[-1]["content"] = f"{filler}\n{messages[-1].get('content') or ''}"
        body["messages"] = messages
    elif "prompt" in body:
        body["prompt"] = f"{filler}\n{body['prompt']}"
    elif "input" in body:
        body["input"] = f"{filler}\n{body['input']}"
    return body


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _check_message(message: dict, expect: dict) -> str:
    content = _text(message.get("content"))
    reasoning = _text(message.get("reasoning_content")) or _text(message.get("reasoning"))
    if expect.get("text") and not (content or reasoning):
        return "empty assistant message"
    if expect.get("content") and not content:
        return "no content in the assistant message"
    if expect.get("reasoning") is True and not reasoning:
        return "no reasoning_content (the reasoning parser did not separate any thinking)"
    if expect.get("reasoning") is False and reasoning:
        return "reasoning_content present with thinking disabled"
    if expect.get("tool_calls") and not message.get("tool_calls"):
        return "no tool_calls"
    contains = expect.get("contains")
    if contains and contains not in content:
        return f"content does not contain {contains!r}"
    return ""


def _check_embedding(answer: dict) -> str:
    try:
        vector = answer["data"][0]["embedding"]
    except (KeyError, IndexError, TypeError):
        return "response is not an embeddings response"
    if not isinstance(vector, list) or not vector:
        return "empty embedding"
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector):
        return "embedding holds non-numbers"
    return ""


def check_answer(request: dict, answer: object) -> str:
    """'' when the decoded JSON answer holds what the request expects, else why not."""
    if not isinstance(answer, dict):
        return "response is not a JSON object"
    expect = request["expect"]
    route = request["route"]
    if route == "/v1/embeddings":
        return _check_embedding(answer)
    try:
        choice = answer["choices"][0]
    except (KeyError, IndexError, TypeError):
        return "response has no choices"
    if route == "/v1/completions":
        if not isinstance(choice, dict):
            return "response has no choices"
        return _check_message({"content": choice.get("text")}, expect)
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        return "response is not a chat completion"
    return _check_message(message, expect)
