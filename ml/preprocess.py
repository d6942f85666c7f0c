"""Feature checks and the preprocessing pipeline saved with every model.

The pipeline has three named steps:

- ``prepare``: median imputation, ``log1p`` of skewed amounts and counts, one-hot of
  categoricals. Its output (the *prepared* space) is in interpretable units; centroids are
  stored in it so that a later run, with its own scaling, can compare them.
- ``scale``: robust scaling (median 0, interquartile range 1) of every prepared column.
- ``reduce``: optional PCA.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, RobustScaler

from ml.config import ClusteringConfig

MISSING_CATEGORY = "unknown"


class FeatureError(ValueError):
    """The feature frame cannot be clustered as configured; the message says why."""


class NoUsableFeatures(FeatureError):
    """No configured feature varies: this business has nothing to cluster on (yet)."""


def drop_absent_features(
    frame: pd.DataFrame, config: ClusteringConfig
) -> tuple[ClusteringConfig, dict[str, str]]:
    """Leave out the features this business does not have, and say why.

    A configured feature that is missing for every customer, or has one value for everyone
    (no web events: ``days_since_last_visit`` is the same for all), cannot separate
    segments. It is dropped from the configuration returned, with the reason, so that an
    orders-only shop is clustered on its order features. With no usable feature left this
    raises NoUsableFeatures; a feature absent from the frame is check_features' error.
    """
    dropped: dict[str, str] = {}
    for column in config.feature_columns:
        if column not in frame.columns:
            continue
        values = frame[column]
        numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        if column in config.numeric_features and not numeric and values.notna().any():
            continue  # a wrong type is a configuration error: check_features says so
        everyone = f"{len(frame):,} customers"
        if values.isna().all():
            dropped[column] = f"missing for all {everyone}"
        elif values.nunique(dropna=False) == 1:
            dropped[column] = f"the same value ({values.iloc[0]!r}) for all {everyone}"
    if not dropped:
        return config, {}
    if len(dropped) == len(config.feature_columns):
        reasons = "; ".join(f"{name}: {why}" for name, why in dropped.items())
        raise NoUsableFeatures(f"no configured feature varies ({reasons})")
    keep = lambda names: tuple(n for n in names if n not in dropped)  # noqa: E731
    narrowed = replace(
        config,
        log_features=keep(config.log_features),
        linear_features=keep(config.linear_features),
        categorical_features=keep(config.categorical_features),
    )
    return narrowed, dropped


def check_features(frame: pd.DataFrame, config: ClusteringConfig) -> None:
    """Fail with a clear message on absent, non-numeric, all-missing or constant features."""
    if config.id_column not in frame.columns:
        raise FeatureError(f"the feature frame has no id column {config.id_column!r}")
    if frame[config.id_column].isna().any():
        missing = int(frame[config.id_column].isna().sum())
        raise FeatureError(f"{missing} rows have no {config.id_column}")
    if frame[config.id_column].duplicated().any():
        dupes = frame.loc[frame[config.id_column].duplicated(), config.id_column].head(3).tolist()
        raise FeatureError(f"duplicate {config.id_column} values, for example {dupes}")
    absent = [c for c in config.feature_columns if c not in frame.columns]
    if absent:
        raise FeatureError(
            f"missing feature columns: {', '.join(absent)} "
            f"(the frame has {', '.join(map(str, frame.columns))})"
        )
    for column in config.numeric_features:
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            raise FeatureError(f"feature {column!r} is not numeric (dtype {values.dtype})")
        present = values.dropna().astype(float)
        if present.empty:
            raise FeatureError(f"feature {column!r} is missing for all {len(frame):,} customers")
        if column in config.log_features and (present < 0).any():
            bad = frame.loc[values < 0, config.id_column].head(3).tolist()
            raise FeatureError(f"feature {column!r} is log-transformed but negative for {bad}")
        if present.nunique() == 1:
            raise FeatureError(
                f"feature {column!r} is constant ({present.iloc[0]!r} for all "
                f"{len(present):,} customers with a value): it cannot separate segments; "
                "remove it from the configuration"
            )
    for column in config.categorical_features:
        if frame[column].nunique(dropna=False) == 1:
            raise FeatureError(
                f"feature {column!r} is constant ({frame[column].iloc[0]!r}): "
                "remove it from the configuration"
            )


def category_column_name(feature: str, category) -> str:
    """One-hot column names read ``preferred_channel_group=email``."""
    return f"{feature}={category}"


def build_pipeline(config: ClusteringConfig) -> Pipeline:
    parts = []
    if config.log_features:
        parts.append(
            (
                "log",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median")),
                        ("log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one")),
                    ]
                ),
                list(config.log_features),
            )
        )
    if config.linear_features:
        parts.append(("linear", SimpleImputer(strategy="median"), list(config.linear_features)))
    if config.categorical_features:
        parts.append(
            (
                "category",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
                        ),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist",
                                min_frequency=config.min_category_share,
                                sparse_output=False,
                                feature_name_combiner=category_column_name,
                            ),
                        ),
                    ]
                ),
                list(config.categorical_features),
            )
        )
    prepare = ColumnTransformer(parts, verbose_feature_names_out=False)
    reduce = (
        PCA(n_components=config.pca_components, random_state=config.random_state)
        if config.pca_components
        else "passthrough"
    )
    return Pipeline([("prepare", prepare), ("scale", RobustScaler()), ("reduce", reduce)])


def categorical_frame(frame: pd.DataFrame, config: ClusteringConfig) -> pd.DataFrame:
    """The feature columns with categoricals as strings (the imputer needs object dtype)."""
    out = frame[config.feature_columns].copy()
    for column in config.categorical_features:
        out[column] = out[column].astype(object).where(out[column].notna(), MISSING_CATEGORY)
        out[column] = out[column].astype(str)
    for column in config.numeric_features:
        out[column] = out[column].astype(float)
    return out


def prepared_names(pipeline: Pipeline) -> list[str]:
    return [str(n) for n in pipeline.named_steps["prepare"].get_feature_names_out()]


def after_prepare(pipeline: Pipeline, prepared: np.ndarray) -> np.ndarray:
    """Scale (and reduce) points given in the prepared space."""
    scaled = pipeline.named_steps["scale"].transform(prepared)
    reduce = pipeline.named_steps["reduce"]
    return scaled if reduce == "passthrough" else reduce.transform(scaled)
