"""``pw.stdlib.utils.async_transformer``: where Pathway's module path puts ``AsyncTransformer``
(the class itself lives in :mod:`deltaflow.udfs.async_transformer`)."""

from deltaflow.udfs.async_transformer import AsyncTransformer

__all__ = ["AsyncTransformer"]
