"""Gemma-3-270M and SmolLM2-135M through the LangChain wrappers, and cache eviction."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate

from langchain_erase.llms import evict_prompts_containing, load_llama, local_chat_model, local_llm
from langchain_erase.models.local_models import LocalLlamaCpp

pytestmark = pytest.mark.integration

EXAMPLES = [
    {"review": "I loved every minute of this film.", "label": "positive"},
    {"review": "A dull, boring waste of two hours.", "label": "negative"},
    {"review": "The acting was superb and the story moving.", "label": "positive"},
    {"review": "Terrible plot and awful dialogue.", "label": "negative"},
]
PROMPT = FewShotPromptTemplate(
    examples=EXAMPLES,
    example_prompt=PromptTemplate.from_template("Review: {review}\nSentiment: {label}"),
    prefix="Classify the sentiment of each movie review as positive or negative.",
    suffix="Review: {review}\nSentiment:",
    input_variables=["review"],
)


@pytest.fixture(scope="module")
def gemma() -> LocalLlamaCpp:
    return local_llm("gemma-3-270m", n_ctx=512, n_threads=2, max_tokens=4, stop=["\n"])


def test_few_shot_chain_with_gemma(gemma: LocalLlamaCpp) -> None:
    chain = PROMPT | gemma
    answer = chain.invoke({"review": "What a wonderful, heartwarming movie!"})
    assert isinstance(answer, str)
    assert answer.strip().lower() in {"positive", "negative"}, answer
    # Greedy decoding: the same prompt gives the same answer (prefix reuse included).
    assert chain.invoke({"review": "What a wonderful, heartwarming movie!"}) == answer


def test_gemma_gets_exactly_one_bos(gemma: LocalLlamaCpp) -> None:
    client = gemma.client
    tokens = client.tokenize(b"Review: fine")
    assert tokens[0] == client.token_bos()
    assert tokens[1] != client.token_bos()


@pytest.mark.parametrize(
    ("model", "chat_format"), [("smollm2-135m", None), ("gemma-3-270m", "gemma")]
)
def test_chat_model(model: str, chat_format: str | None) -> None:
    chat = local_chat_model(model, n_ctx=256, n_threads=2, max_tokens=8)
    if chat_format:  # a GGUF without a chat template must not fall back to Llama-2's format
        assert chat.client.chat_format == chat_format
    reply = chat.invoke("Say hello.")
    assert isinstance(reply, AIMessage)
    assert isinstance(reply.content, str)
    assert reply.content.strip()


def test_eviction_erases_cached_prompts_and_live_context() -> None:
    from llama_cpp.llama_cache import LlamaRAMCache

    llama = load_llama("smollm2-135m", n_ctx=256, n_threads=2)
    cache = LlamaRAMCache()
    llama.set_cache(cache)
    secret = EXAMPLES[1]["review"]
    with_secret = PROMPT.format(review="It was fine.")
    without_secret = "Classify the sentiment: Review: It was fine.\nSentiment:"
    llama.create_completion(with_secret, max_tokens=1, temperature=0.0)
    llama.create_completion(without_secret, max_tokens=1, temperature=0.0)
    llama.create_completion(with_secret.replace("It was fine.", "Meh."), max_tokens=1)
    assert len(cache.cache_state) == 3

    # Two cached prompts showed the secret; the live context holds the last of them.
    assert evict_prompts_containing(llama, [secret]) == 3
    assert len(cache.cache_state) == 1
    assert llama.n_tokens == 0
    assert evict_prompts_containing(llama, [secret]) == 0
    # The model still works after eviction.
    result = llama.create_completion(without_secret, max_tokens=1, temperature=0.0)
    assert isinstance(result, dict)
    assert result["choices"]
