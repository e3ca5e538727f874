from modelcatalog.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateFolderRequest(_message.Message):
    __slots__ = ("name", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class CreateFolderResponse(_message.Message):
    __slots__ = ("folder",)
    FOLDER_FIELD_NUMBER: _ClassVar[int]
    folder: _resources_pb2.Folder
    def __init__(self, folder: _Optional[_Union[_resources_pb2.Folder, _Mapping]] = ...) -> None: ...

class GetFolderRequest(_message.Message):
    __slots__ = ("folder_id",)
    FOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    folder_id: str
    def __init__(self, folder_id: _Optional[str] = ...) -> None: ...

class GetFolderResponse(_message.Message):
    __slots__ = ("folder",)
    FOLDER_FIELD_NUMBER: _ClassVar[int]
    folder: _resources_pb2.Folder
    def __init__(self, folder: _Optional[_Union[_resources_pb2.Folder, _Mapping]] = ...) -> None: ...

class ListFoldersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFoldersResponse(_message.Message):
    __slots__ = ("folders", "next_page_token")
    FOLDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    folders: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Folder]
    next_page_token: str
    def __init__(self, folders: _Optional[_Iterable[_Union[_resources_pb2.Folder, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GrantFolderAccessRequest(_message.Message):
    __slots__ = ("folder_id", "username", "role")
    FOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    folder_id: str
    username: str
    role: _resources_pb2.FolderRole
    def __init__(self, folder_id: _Optional[str] = ..., username: _Optional[str] = ..., role: _Optional[_Union[_resources_pb2.FolderRole, str]] = ...) -> None: ...

class GrantFolderAccessResponse(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: _resources_pb2.FolderMember
    def __init__(self, member: _Optional[_Union[_resources_pb2.FolderMember, _Mapping]] = ...) -> None: ...

class RevokeFolderAccessRequest(_message.Message):
    __slots__ = ("folder_id", "username")
    FOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    folder_id: str
    username: str
    def __init__(self, folder_id: _Optional[str] = ..., username: _Optional[str] = ...) -> None: ...

class RevokeFolderAccessResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListFolderAccessRequest(_message.Message):
    __slots__ = ("folder_id", "page_size", "page_token")
    FOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    folder_id: str
    page_size: int
    page_token: str
    def __init__(self, folder_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFolderAccessResponse(_message.Message):
    __slots__ = ("members", "next_page_token")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[_resources_pb2.FolderMember]
    next_page_token: str
    def __init__(self, members: _Optional[_Iterable[_Union[_resources_pb2.FolderMember, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
