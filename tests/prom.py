"""Reading Prometheus text in tests: samples by name and labels, whatever the label order."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample, or None when the exposition has no such sample."""
    return samples(text).get((name, frozenset(labels.items())))


def label_sets(text: str, name: str) -> list[dict[str, str]]:
    """The label sets a sample name appears with."""
    return [dict(labels) for (found, labels) in samples(text) if found == name]
