"""The base of every settings model: frozen, and unknown keys are errors."""

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def conflict(message: str, *fields: str) -> PydanticCustomError:
    """A cross-field error that names the FIELDS it ties (dotted, relative to the
    model raising it), so the loader can blame the source that set them rather
    than whichever source first set the model."""
    return PydanticCustomError("conflict", message.replace("{", "(").replace("}", ")"), {"fields": fields})
