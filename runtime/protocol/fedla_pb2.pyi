from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Frame(_message.Message):
    __slots__ = ("envelope", "chunk")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    envelope: bytes
    chunk: Chunk
    def __init__(self, envelope: _Optional[bytes] = ..., chunk: _Optional[_Union[Chunk, _Mapping]] = ...) -> None: ...

class Frames(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[Frame]
    def __init__(self, frames: _Optional[_Iterable[_Union[Frame, _Mapping]]] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("buffer", "offset", "data")
    BUFFER_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    buffer: int
    offset: int
    data: bytes
    def __init__(self, buffer: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("none", "bool_value", "int_value", "float_value", "str_value", "array", "csr", "list", "map")
    NONE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STR_VALUE_FIELD_NUMBER: _ClassVar[int]
    ARRAY_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    none: NoneValue
    bool_value: bool
    int_value: int
    float_value: float
    str_value: str
    array: Array
    csr: Sparse
    list: ValueList
    map: ValueMap
    def __init__(self, none: _Optional[_Union[NoneValue, _Mapping]] = ..., bool_value: _Optional[bool] = ..., int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., str_value: _Optional[str] = ..., array: _Optional[_Union[Array, _Mapping]] = ..., csr: _Optional[_Union[Sparse, _Mapping]] = ..., list: _Optional[_Union[ValueList, _Mapping]] = ..., map: _Optional[_Union[ValueMap, _Mapping]] = ...) -> None: ...

class NoneValue(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Array(_message.Message):
    __slots__ = ("dtype", "shape", "inline", "buffer")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    INLINE_FIELD_NUMBER: _ClassVar[int]
    BUFFER_FIELD_NUMBER: _ClassVar[int]
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    inline: bytes
    buffer: int
    def __init__(self, dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., inline: _Optional[bytes] = ..., buffer: _Optional[int] = ...) -> None: ...

class Sparse(_message.Message):
    __slots__ = ("shape", "data", "indices", "indptr")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    INDPTR_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: Array
    indices: Array
    indptr: Array
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., data: _Optional[_Union[Array, _Mapping]] = ..., indices: _Optional[_Union[Array, _Mapping]] = ..., indptr: _Optional[_Union[Array, _Mapping]] = ...) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, items: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class ValueMap(_message.Message):
    __slots__ = ("items",)
    class ItemsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.MessageMap[str, Value]
    def __init__(self, items: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class Operand(_message.Message):
    __slots__ = ("var", "literal")
    VAR_FIELD_NUMBER: _ClassVar[int]
    LITERAL_FIELD_NUMBER: _ClassVar[int]
    var: str
    literal: Value
    def __init__(self, var: _Optional[str] = ..., literal: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class Read(_message.Message):
    __slots__ = ("var", "path", "format", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VAR_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    var: str
    path: str
    format: str
    options: _containers.ScalarMap[str, str]
    def __init__(self, var: _Optional[str] = ..., path: _Optional[str] = ..., format: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Put(_message.Message):
    __slots__ = ("var", "value")
    VAR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    var: str
    value: Value
    def __init__(self, var: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class Get(_message.Message):
    __slots__ = ("var",)
    VAR_FIELD_NUMBER: _ClassVar[int]
    var: str
    def __init__(self, var: _Optional[str] = ...) -> None: ...

class ExecInst(_message.Message):
    __slots__ = ("op", "inputs", "attrs", "output")
    class AttrsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    OP_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    op: str
    inputs: _containers.RepeatedCompositeFieldContainer[Operand]
    attrs: _containers.MessageMap[str, Value]
    output: str
    def __init__(self, op: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[Operand, _Mapping]]] = ..., attrs: _Optional[_Mapping[str, Value]] = ..., output: _Optional[str] = ...) -> None: ...

class ExecUdf(_message.Message):
    __slots__ = ("function", "inputs", "attrs", "outputs")
    class AttrsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    function: str
    inputs: _containers.RepeatedCompositeFieldContainer[Operand]
    attrs: _containers.MessageMap[str, Value]
    outputs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, function: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[Operand, _Mapping]]] = ..., attrs: _Optional[_Mapping[str, Value]] = ..., outputs: _Optional[_Iterable[str]] = ...) -> None: ...

class Clear(_message.Message):
    __slots__ = ("vars", "all")
    VARS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    vars: _containers.RepeatedScalarFieldContainer[str]
    all: bool
    def __init__(self, vars: _Optional[_Iterable[str]] = ..., all: _Optional[bool] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ("read", "put", "get", "exec_inst", "exec_udf", "clear")
    READ_FIELD_NUMBER: _ClassVar[int]
    PUT_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    EXEC_INST_FIELD_NUMBER: _ClassVar[int]
    EXEC_UDF_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    read: Read
    put: Put
    get: Get
    exec_inst: ExecInst
    exec_udf: ExecUdf
    clear: Clear
    def __init__(self, read: _Optional[_Union[Read, _Mapping]] = ..., put: _Optional[_Union[Put, _Mapping]] = ..., get: _Optional[_Union[Get, _Mapping]] = ..., exec_inst: _Optional[_Union[ExecInst, _Mapping]] = ..., exec_udf: _Optional[_Union[ExecUdf, _Mapping]] = ..., clear: _Optional[_Union[Clear, _Mapping]] = ...) -> None: ...

class BatchRequest(_message.Message):
    __slots__ = ("tenant", "requests", "buffer_sizes")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BUFFER_SIZES_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    requests: _containers.RepeatedCompositeFieldContainer[Request]
    buffer_sizes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, tenant: _Optional[str] = ..., requests: _Optional[_Iterable[_Union[Request, _Mapping]]] = ..., buffer_sizes: _Optional[_Iterable[int]] = ...) -> None: ...

class Metadata(_message.Message):
    __slots__ = ("shape", "dtype", "sparse", "nnz", "fingerprint", "reused", "privacy", "min_rows")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SPARSE_FIELD_NUMBER: _ClassVar[int]
    NNZ_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    MIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    sparse: bool
    nnz: int
    fingerprint: str
    reused: bool
    privacy: str
    min_rows: int
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., sparse: _Optional[bool] = ..., nnz: _Optional[int] = ..., fingerprint: _Optional[str] = ..., reused: _Optional[bool] = ..., privacy: _Optional[str] = ..., min_rows: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("type", "code", "message")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    type: str
    code: str
    message: str
    def __init__(self, type: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("error", "value", "meta", "done")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    error: Error
    value: Value
    meta: Metadata
    done: Empty
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., value: _Optional[_Union[Value, _Mapping]] = ..., meta: _Optional[_Union[Metadata, _Mapping]] = ..., done: _Optional[_Union[Empty, _Mapping]] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BatchResponse(_message.Message):
    __slots__ = ("responses", "buffer_sizes", "ticket")
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    BUFFER_SIZES_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[Response]
    buffer_sizes: _containers.RepeatedScalarFieldContainer[int]
    ticket: str
    def __init__(self, responses: _Optional[_Iterable[_Union[Response, _Mapping]]] = ..., buffer_sizes: _Optional[_Iterable[int]] = ..., ticket: _Optional[str] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("tenant", "ticket")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    ticket: str
    def __init__(self, tenant: _Optional[str] = ..., ticket: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class CacheStatus(_message.Message):
    __slots__ = ("entries", "bytes", "budget", "hits", "misses", "evictions")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    entries: int
    bytes: int
    budget: int
    hits: int
    misses: int
    evictions: int
    def __init__(self, entries: _Optional[int] = ..., bytes: _Optional[int] = ..., budget: _Optional[int] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., evictions: _Optional[int] = ...) -> None: ...

class TenantStatus(_message.Message):
    __slots__ = ("tenant_hint", "variables", "held_bytes", "idle_seconds", "tenant")
    TENANT_HINT_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    HELD_BYTES_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant_hint: str
    variables: int
    held_bytes: int
    idle_seconds: float
    tenant: str
    def __init__(self, tenant_hint: _Optional[str] = ..., variables: _Optional[int] = ..., held_bytes: _Optional[int] = ..., idle_seconds: _Optional[float] = ..., tenant: _Optional[str] = ...) -> None: ...

class WorkerStatus(_message.Message):
    __slots__ = ("uptime_seconds", "data_dir", "rss_bytes", "tenants", "read_cache", "lineage_cache", "tenant_timeout_seconds")
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DATA_DIR_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    READ_CACHE_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_CACHE_FIELD_NUMBER: _ClassVar[int]
    TENANT_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    uptime_seconds: float
    data_dir: str
    rss_bytes: int
    tenants: _containers.RepeatedCompositeFieldContainer[TenantStatus]
    read_cache: CacheStatus
    lineage_cache: CacheStatus
    tenant_timeout_seconds: float
    def __init__(self, uptime_seconds: _Optional[float] = ..., data_dir: _Optional[str] = ..., rss_bytes: _Optional[int] = ..., tenants: _Optional[_Iterable[_Union[TenantStatus, _Mapping]]] = ..., read_cache: _Optional[_Union[CacheStatus, _Mapping]] = ..., lineage_cache: _Optional[_Union[CacheStatus, _Mapping]] = ..., tenant_timeout_seconds: _Optional[float] = ...) -> None: ...
