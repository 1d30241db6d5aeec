"""The papers' numbers (package data `published_results.csv`), keyed by ratbench names."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from ratbench.data.catalog import DATASETS
from ratbench.methods.catalog import by_title

PREFERRED_SOURCE = "VER Table 1"


def ratbench_method(name: str) -> str:
    """A published table's method name -> ratbench's (each method declares its `title`); others lower-cased."""
    return by_title().get(name, name.lower())


def load_published() -> pd.DataFrame:
    """Columns: source, encoder (`gru` or the transformer's name), method and dataset (ratbench names), metric,
    mean, std. The CR paper's P/R/F1 (copied into VER's Table 2) are macro averages: the CSV names them so."""
    with resources.files("ratbench").joinpath("published_results.csv").open(encoding="utf-8") as fh:
        df = pd.read_csv(fh)
    titles = {DATASETS.get(n).title: n for n in DATASETS}
    df["method"] = df["method"].map(ratbench_method)
    df["dataset"] = df["dataset"].map(lambda t: titles.get(t, t))
    # the papers' GRU rows all use GloVe; a transformer row stands beside runs of exactly that encoder
    df["encoder"] = df["encoder"].map(lambda e: "gru" if str(e).upper().startswith("GRU") else str(e))
    return df.dropna(subset=["mean"])


def best_published(df: pd.DataFrame) -> pd.DataFrame:
    """One value per (method, dataset, encoder, metric): VER's Table 1 when it has one, else the first source."""
    df = df.assign(_rank=(df["source"] != PREFERRED_SOURCE).astype(int))
    df = df.sort_values(["_rank"]).drop_duplicates(["method", "dataset", "encoder", "metric"])
    return df.drop(columns="_rank").rename(columns={"mean": "published", "std": "published_std",
                                                    "source": "published_source"})
