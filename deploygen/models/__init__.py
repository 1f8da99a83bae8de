"""Model facts: read from the Hugging Face Hub (`model add`), kept in data/models/NAME.yaml, derived from.

The validate and plan stages read facts through `load_model_facts(name)` and the numbers a
`ModelFacts` derives (KV bytes per token per dtype and per GPU at a TP size), never typed-in numbers.
"""

from deploygen.models.facts import ModelFacts, known_models, load_model_facts

__all__ = ["ModelFacts", "known_models", "load_model_facts"]
