"""Comparing saved model files across library releases (used by the rebuild tests)."""

from pathlib import Path

# Keys a library writes into a saved file that say which release wrote it, not what the model is.
VOLATILE_KEYS = frozenset({"transformers_version"})


def saved_json(path: Path) -> dict:
    """A saved config or tokenizer file as a dict, without the keys that only name a library release."""
    import json

    return {k: v for k, v in json.loads(Path(path).read_text()).items() if k not in VOLATILE_KEYS}


def assert_same_saved_file(rebuilt: Path, shipped: Path) -> None:
    """The rebuilt file says what the shipped one says: every shipped field, equal (release stamps aside).

    A newer library may add fields with their defaults; those are not a difference in the
    model, so only the fields of the shipped file are compared, and each must be present.
    """
    new, old = saved_json(rebuilt), saved_json(shipped)
    missing = sorted(old.keys() - new.keys())
    assert not missing, f"{rebuilt.name}: fields of the shipped file missing from the rebuilt one: {missing}"
    differ = {k: (new[k], old[k]) for k in old if new[k] != old[k]}
    assert not differ, f"{rebuilt.name}: fields that differ (rebuilt, shipped): {differ}"
