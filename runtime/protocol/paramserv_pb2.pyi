from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Array(_message.Message):
    __slots__ = ("dtype", "shape", "data")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    def __init__(self, dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Caller(_message.Message):
    __slots__ = ("worker", "attempt")
    WORKER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    worker: int
    attempt: int
    def __init__(self, worker: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("caller", "kind", "arrays", "weight", "version", "seconds")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ARRAYS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    kind: str
    arrays: _containers.RepeatedCompositeFieldContainer[Array]
    weight: int
    version: int
    seconds: float
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., kind: _Optional[str] = ..., arrays: _Optional[_Iterable[_Union[Array, _Mapping]]] = ..., weight: _Optional[int] = ..., version: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

class ModelReply(_message.Message):
    __slots__ = ("model", "version", "epoch")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    model: _containers.RepeatedCompositeFieldContainer[Array]
    version: int
    epoch: int
    def __init__(self, model: _Optional[_Iterable[_Union[Array, _Mapping]]] = ..., version: _Optional[int] = ..., epoch: _Optional[int] = ...) -> None: ...
