//! The part of the chat API's JSON that the chat view shows, as our own serde types.
//!
//! Every field the view does not need is left out (serde skips unknown fields), every field
//! it does need has a default, and every tagged union has a catch-all variant: a phone whose
//! chat core is older or newer than the documentation still gets its messages shown, and a
//! response this view cannot read is summarised by its `type`, never a failure of the session.
//! The JSON is already in the tagged ("kotlin") form here: the session client converts a
//! Swift host's single-field objects before anything reaches the view.

use serde::Deserialize;
use serde_json::Value;
use xrcp::session::CryptoFile;

/// The results and events the view renders, by their `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum ChatMsg {
    /// `/_get chats`: the chat list with previews.
    ApiChats {
        #[serde(default)]
        chats: Vec<AChat>,
    },
    /// `/chats` (the CLI's own list).
    Chats {
        #[serde(default)]
        chats: Vec<AChat>,
    },
    /// `/_get chat`: one chat's items.
    ApiChat {
        chat: AChat,
    },
    /// `/tail`, `/search`: items of one or all chats.
    ChatItems {
        #[serde(default, rename = "chatItems")]
        chat_items: Vec<AChatItem>,
    },
    /// A sent message (command result) or received messages (event).
    NewChatItems {
        #[serde(default, rename = "chatItems")]
        chat_items: Vec<AChatItem>,
    },
    ChatItemUpdated {
        #[serde(rename = "chatItem")]
        chat_item: AChatItem,
    },
    ChatItemNotChanged {
        #[serde(rename = "chatItem")]
        chat_item: AChatItem,
    },
    ChatItemsDeleted {
        #[serde(default, rename = "chatItemDeletions")]
        deletions: Vec<ChatItemDeletion>,
        #[serde(default, rename = "byUser")]
        by_user: bool,
    },
    ChatItemReaction {
        #[serde(default)]
        added: bool,
        reaction: AciReaction,
    },
    ReceivedContactRequest {
        #[serde(rename = "contactRequest")]
        request: ContactRequest,
    },
    ContactConnected {
        contact: Contact,
    },
    ContactConnecting {
        contact: Contact,
    },
    ContactSndReady {
        contact: Contact,
    },
    AcceptingContactRequest {
        contact: Contact,
    },
    ContactDeletedByContact {
        contact: Contact,
    },
    RcvFileDescrReady {
        #[serde(rename = "chatItem")]
        chat_item: AChatItem,
    },
    RcvFileAccepted {
        #[serde(rename = "chatItem")]
        chat_item: AChatItem,
    },
    RcvFileStart {
        #[serde(rename = "chatItem")]
        chat_item: AChatItem,
    },
    #[serde(rename = "rcvFileProgressXFTP")]
    RcvFileProgress {
        #[serde(default, rename = "chatItem_")]
        chat_item: Option<AChatItem>,
        #[serde(default, rename = "receivedSize")]
        done: u64,
        #[serde(default, rename = "totalSize")]
        total: u64,
    },
    RcvFileComplete {
        #[serde(rename = "chatItem")]
        chat_item: AChatItem,
    },
    RcvFileSndCancelled {
        #[serde(rename = "chatItem")]
        chat_item: AChatItem,
    },
    RcvFileError {
        #[serde(default, rename = "chatItem_")]
        chat_item: Option<AChatItem>,
        #[serde(default, rename = "agentError")]
        error: Value,
    },
    #[serde(rename = "sndFileProgressXFTP")]
    SndFileProgress {
        #[serde(default, rename = "chatItem_")]
        chat_item: Option<AChatItem>,
        #[serde(default, rename = "sentSize")]
        done: u64,
        #[serde(default, rename = "totalSize")]
        total: u64,
    },
    #[serde(rename = "sndFileCompleteXFTP")]
    SndFileComplete {
        #[serde(rename = "chatItem")]
        chat_item: AChatItem,
    },
    SndFileError {
        #[serde(default, rename = "chatItem_")]
        chat_item: Option<AChatItem>,
        #[serde(default, rename = "errorMessage")]
        message: String,
    },
    /// Older chat cores answer a refused command with this result rather than an error.
    ChatCmdError {
        #[serde(rename = "chatError")]
        error: Value,
    },
    /// An error event.
    ChatError {
        #[serde(rename = "chatError")]
        error: Value,
    },
    CmdOk {},
    /// Anything else: summarised by its `type`.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AChat {
    pub(crate) chat_info: ChatInfo,
    #[serde(default)]
    pub(crate) chat_items: Vec<ChatItem>,
    #[serde(default)]
    pub(crate) chat_stats: ChatStats,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ChatStats {
    pub(crate) unread_count: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AChatItem {
    pub(crate) chat_info: ChatInfo,
    pub(crate) chat_item: ChatItem,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatItemDeletion {
    pub(crate) deleted_chat_item: AChatItem,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AciReaction {
    pub(crate) chat_info: ChatInfo,
    pub(crate) chat_reaction: CiReaction,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CiReaction {
    pub(crate) chat_dir: ChatDir,
    pub(crate) chat_item: ChatItem,
    pub(crate) reaction: Reaction,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum Reaction {
    Emoji {
        #[serde(default)]
        emoji: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum ChatInfo {
    Direct {
        contact: Contact,
    },
    Group {
        #[serde(rename = "groupInfo")]
        group: GroupInfo,
    },
    Local {},
    ContactRequest {
        #[serde(rename = "contactRequest")]
        request: ContactRequest,
    },
    ContactConnection {},
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Contact {
    pub(crate) local_display_name: String,
    pub(crate) profile: Profile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Profile {
    pub(crate) display_name: String,
    pub(crate) full_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct GroupInfo {
    pub(crate) local_display_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct GroupMember {
    pub(crate) local_display_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ContactRequest {
    pub(crate) local_display_name: String,
    pub(crate) profile: Profile,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatItem {
    pub(crate) chat_dir: ChatDir,
    #[serde(default)]
    pub(crate) meta: Meta,
    #[serde(default = "ItemContent::other")]
    pub(crate) content: ItemContent,
    #[serde(default)]
    pub(crate) file: Option<CiFile>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum ChatDir {
    DirectSnd,
    DirectRcv,
    GroupSnd,
    GroupRcv {
        #[serde(default, rename = "groupMember")]
        member: Option<GroupMember>,
    },
    LocalSnd,
    LocalRcv,
    #[serde(other)]
    Other,
}

impl ChatDir {
    pub(crate) fn sent(&self) -> bool {
        matches!(
            self,
            ChatDir::DirectSnd | ChatDir::GroupSnd | ChatDir::LocalSnd
        )
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Meta {
    pub(crate) item_ts: String,
    pub(crate) item_text: String,
    pub(crate) item_edited: bool,
    pub(crate) item_deleted: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum ItemContent {
    SndMsgContent {
        #[serde(rename = "msgContent")]
        msg: MsgContent,
    },
    RcvMsgContent {
        #[serde(rename = "msgContent")]
        msg: MsgContent,
    },
    SndDeleted {},
    RcvDeleted {},
    #[serde(other)]
    Other,
}

impl ItemContent {
    fn other() -> ItemContent {
        ItemContent::Other
    }
}

/// Every message content kind (text, link, image, file, voice, …) carries its text.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MsgContent {
    pub(crate) text: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CiFile {
    pub(crate) file_id: i64,
    #[serde(default)]
    pub(crate) file_name: String,
    #[serde(default)]
    pub(crate) file_size: u64,
    #[serde(default)]
    pub(crate) file_source: Option<CryptoFile>,
    #[serde(default = "FileStatus::other")]
    pub(crate) file_status: FileStatus,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum FileStatus {
    RcvInvitation,
    RcvAccepted,
    RcvTransfer {
        #[serde(default, rename = "rcvProgress")]
        done: u64,
        #[serde(default, rename = "rcvTotal")]
        total: u64,
    },
    RcvComplete,
    RcvCancelled,
    RcvError,
    SndStored,
    SndTransfer {
        #[serde(default, rename = "sndProgress")]
        done: u64,
        #[serde(default, rename = "sndTotal")]
        total: u64,
    },
    SndComplete,
    SndCancelled,
    SndError,
    #[serde(other)]
    Other,
}

impl FileStatus {
    fn other() -> FileStatus {
        FileStatus::Other
    }
}
