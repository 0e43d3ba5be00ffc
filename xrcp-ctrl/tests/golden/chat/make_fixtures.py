import json, copy
user = {"userId":1,"agentUserId":"1","userContactId":1,"localDisplayName":"me",
        "profile":{"profileId":1,"displayName":"me","fullName":"","localAlias":""},
        "fullPreferences":{},"activeUser":True,"activeOrder":1,"showNtfs":True,
        "sendRcptsContacts":True,"sendRcptsSmallGroups":True,"autoAcceptMemberContacts":False}
def contact(cid, name, full=""):
    return {"contactId":cid,"localDisplayName":name,
            "profile":{"profileId":cid,"displayName":name,"fullName":full,"localAlias":""},
            "contactUsed":True,"contactStatus":"active",
            "chatSettings":{"enableNtfs":"all","favorite":False},
            "userPreferences":{},"mergedPreferences":{},
            "createdAt":"2025-06-01T09:00:00Z","updatedAt":"2025-06-01T09:00:00Z",
            "chatTs":"2025-06-02T10:15:00Z","contactGrpInvSent":False,"chatTags":[],"chatDeleted":False}
alice = contact(2, "alice", "Alice")
carol = contact(4, "carol")
erin = contact(6, "erin", "Erin")
team = {"groupId":1,"localDisplayName":"team",
        "groupProfile":{"displayName":"team","fullName":""},
        "chatSettings":{"enableNtfs":"all","favorite":False},
        "createdAt":"2025-06-01T09:00:00Z","updatedAt":"2025-06-01T09:00:00Z",
        "chatTs":"2025-06-02T10:20:00Z","chatTags":[]}
bob = {"groupMemberId":3,"groupId":1,"memberId":"Ym9i","memberRole":"member",
       "memberCategory":"inviteeMember","memberStatus":"connected","localDisplayName":"bob",
       "memberProfile":{"profileId":3,"displayName":"bob","fullName":"","localAlias":""},
       "createdAt":"2025-06-01T09:00:00Z","updatedAt":"2025-06-01T09:00:00Z"}
dave_req = {"contactRequestId":1,"agentInvitationId":"ZGF2ZQ==","localDisplayName":"dave",
            "profileId":7,"profile":{"displayName":"dave","fullName":"Dave","localAlias":""},
            "createdAt":"2025-06-02T10:30:00Z","updatedAt":"2025-06-02T10:30:00Z"}
def meta(iid, ts, text, status, edited=False):
    return {"itemId":iid,"itemTs":ts,"itemText":text,"itemStatus":{"type":status},
            "itemEdited":edited,"userMention":False,"hasLink":False,"deletable":True,
            "editable":status.startswith("snd"),"showGroupAsSender":False,
            "createdAt":ts,"updatedAt":ts}
def item(direction, iid, ts, text, edited=False, file=None, content=None, member=None):
    snd = direction.endswith("Snd")
    d = {"type":direction}
    if member: d["groupMember"] = member
    it = {"chatDir":d,"meta":meta(iid, ts, text, "sndSent" if snd else "rcvRead", edited),
          "content":content or {"type":"sndMsgContent" if snd else "rcvMsgContent",
                                "msgContent":{"type":"file" if file else "text","text":text}},
          "mentions":{},"reactions":[]}
    if snd: it["meta"]["itemStatus"] = {"type":"sndSent","sndProgress":"complete"}
    if file: it["file"] = file
    return it
direct = lambda c: {"type":"direct","contact":c}
group = lambda g: {"type":"group","groupInfo":g}
stats = lambda n: {"unreadCount":n,"unreadMentions":0,"reportsCount":0,"minUnreadItemId":11 if n else 0,"unreadChat":False}
photo = {"fileId":5,"fileName":"photo.jpg","fileSize":122880,"fileStatus":{"type":"rcvInvitation"},"fileProtocol":"xftp"}
hi = item("directRcv", 11, "2025-06-02T10:15:00Z", "hi there")
hello = item("directSnd", 12, "2025-06-02T10:16:30Z", "hello alice")
pic = item("directRcv", 13, "2025-06-02T10:17:05Z", "", file=photo)
bob_msg = item("groupRcv", 21, "2025-06-02T10:20:00Z", "see you at 5", member=bob)
fx = {}
fx["api_chats"] = {"result":{"type":"apiChats","user":user,"chats":[
    {"chatInfo":direct(alice),"chatItems":[hi],"chatStats":stats(2)},
    {"chatInfo":group(team),"chatItems":[bob_msg],"chatStats":stats(1)},
    {"chatInfo":direct(carol),"chatItems":[],"chatStats":stats(0)},
    {"chatInfo":{"type":"contactRequest","contactRequest":dave_req},"chatItems":[],"chatStats":stats(0)}]}}
fx["chat_items"] = {"result":{"type":"chatItems","user":user,"chatItems":[
    {"chatInfo":direct(alice),"chatItem":i} for i in (hi, hello, pic)]}}
fx["api_chat"] = {"result":{"type":"apiChat","user":user,"chat":
    {"chatInfo":direct(alice),"chatItems":[hi, hello],"chatStats":stats(0)},"navInfo":{"afterUnread":0,"afterTotal":0}}}
sent = item("directSnd", 14, "2025-06-02T10:18:00Z", "see you")
sent["meta"]["itemStatus"] = {"type":"sndNew"}
fx["new_chat_items_sent"] = {"result":{"type":"newChatItems","user":user,"chatItems":[{"chatInfo":direct(alice),"chatItem":sent}]}}
fx["new_chat_items_group"] = {"result":{"type":"newChatItems","user":user,"chatItems":[{"chatInfo":group(team),"chatItem":bob_msg}]}}
edited = item("directRcv", 11, "2025-06-02T10:15:00Z", "hi there!", edited=True)
fx["chat_item_updated"] = {"result":{"type":"chatItemUpdated","user":user,"chatItem":{"chatInfo":direct(alice),"chatItem":edited}}}
gone = item("directRcv", 11, "2025-06-02T10:15:00Z", "hi there",
            content={"type":"rcvDeleted","deleteMode":"broadcast"})
gone["meta"]["itemDeleted"] = {"type":"deleted","deletedTs":"2025-06-02T10:19:00Z","chatType":"direct"}
fx["chat_items_deleted"] = {"result":{"type":"chatItemsDeleted","user":user,"chatItemDeletions":[
    {"deletedChatItem":{"chatInfo":direct(alice),"chatItem":hi},"toChatItem":{"chatInfo":direct(alice),"chatItem":gone}}],
    "byUser":False,"timed":False}}
fx["chat_item_reaction"] = {"result":{"type":"chatItemReaction","user":user,"added":True,"reaction":{
    "chatInfo":direct(alice),"chatReaction":{"chatDir":{"type":"directRcv"},"chatItem":hello,
    "sentAt":"2025-06-02T10:17:40Z","reaction":{"type":"emoji","emoji":"👍"}}}}}
fx["received_contact_request"] = {"result":{"type":"receivedContactRequest","user":user,"contactRequest":dave_req}}
fx["contact_connected"] = {"result":{"type":"contactConnected","user":user,"contact":erin}}
fx["contact_deleted_by_contact"] = {"result":{"type":"contactDeletedByContact","user":user,"contact":carol}}
def with_status(st, src=None):
    f = copy.deepcopy(photo); f["fileStatus"] = st
    if src: f["fileSource"] = {"filePath": src}
    return {"chatInfo":direct(alice),"chatItem":item("directRcv", 13, "2025-06-02T10:17:05Z", "", file=f)}
fx["rcv_file_start"] = {"result":{"type":"rcvFileStart","user":user,"chatItem":with_status({"type":"rcvAccepted"}, "photo.jpg")}}
fx["rcv_file_progress"] = {"result":{"type":"rcvFileProgressXFTP","user":user,
    "chatItem_":with_status({"type":"rcvTransfer","rcvProgress":61440,"rcvTotal":122880}, "photo.jpg"),
    "receivedSize":61440,"totalSize":122880,
    "rcvFileTransfer":{"fileId":5}}}
fx["rcv_file_complete"] = {"result":{"type":"rcvFileComplete","user":user,"chatItem":with_status({"type":"rcvComplete"}, "photo.jpg")}}
doc = {"fileId":6,"fileName":"notes.pdf","fileSize":2048,"fileSource":{"filePath":"notes.pdf"},
       "fileStatus":{"type":"sndComplete"},"fileProtocol":"xftp"}
fx["snd_file_complete"] = {"result":{"type":"sndFileCompleteXFTP","user":user,
    "chatItem":{"chatInfo":direct(alice),"chatItem":item("directSnd", 15, "2025-06-02T10:21:00Z", "", file=doc)},
    "fileTransferMeta":{"fileId":6,"fileName":"notes.pdf","filePath":"notes.pdf","fileSize":2048,"chunkSize":1024,"cancelled":False}}}
fx["rcv_file_error"] = {"result":{"type":"rcvFileError","user":user,
    "chatItem_":with_status({"type":"rcvError","rcvFileError":{"type":"other","fileError":"digest mismatch"}}),
    "agentError":{"type":"XFTP","serverAddress":"xftp://example","xftpErr":{"type":"DIGEST"}},
    "rcvFileTransfer":{"fileId":5}}}
fx["error_store"] = {"error":{"type":"errorStore","storeError":{"type":"contactNotFoundByName","contactName":"zoe"}}}
fx["error_no_user"] = {"error":{"type":"error","errorType":{"type":"noActiveUser"}}}
fx["error_agent"] = {"error":{"type":"errorAgent","agentError":{"type":"BROKER","brokerAddress":"smp://example","brokerErr":{"type":"TIMEOUT"}},"agentConnId":"YWJj"}}
fx["chat_cmd_error"] = {"result":{"type":"chatCmdError","chatError":{"type":"error","errorType":{"type":"commandError","message":"Failed reading: empty"}}}}
fx["chat_error_event"] = {"result":{"type":"chatError","chatError":{"type":"error","errorType":{"type":"contactNotReady","contact":alice}}}}
fx["unknown"] = {"result":{"type":"groupLinkRelaysUpdated","user":user,"groupInfo":team,"groupRelays":[]}}
fx["chats"] = {"result":{"type":"chats","chats":[
    {"chatInfo":direct(alice),"chatItems":[hello],"chatStats":stats(0)},
    {"chatInfo":{"type":"local","noteFolder":{"noteFolderId":1,"userId":1,"favorite":False,"unread":False}},"chatItems":[],"chatStats":stats(0)}]}}
fx["chat_item_not_changed"] = {"result":{"type":"chatItemNotChanged","user":user,"chatItem":{"chatInfo":direct(alice),"chatItem":hello}}}
fx["contact_connecting"] = {"result":{"type":"contactConnecting","user":user,"contact":erin}}
fx["contact_snd_ready"] = {"result":{"type":"contactSndReady","user":user,"contact":erin}}
fx["accepting_contact_request"] = {"result":{"type":"acceptingContactRequest","user":user,"contact":erin}}
fx["rcv_file_descr_ready"] = {"result":{"type":"rcvFileDescrReady","user":user,"chatItem":with_status({"type":"rcvAccepted"}),
    "rcvFileTransfer":{"fileId":5},"rcvFileDescr":{"fileDescrId":1,"fileDescrText":"","fileDescrPartNo":0,"fileDescrComplete":True}}}
fx["rcv_file_accepted"] = {"result":{"type":"rcvFileAccepted","user":user,"chatItem":with_status({"type":"rcvAccepted"})}}
fx["rcv_file_snd_cancelled"] = {"result":{"type":"rcvFileSndCancelled","user":user,"chatItem":with_status({"type":"rcvCancelled"}),"rcvFileTransfer":{"fileId":5}}}
sending = copy.deepcopy(doc); sending["fileStatus"] = {"type":"sndTransfer","sndProgress":1024,"sndTotal":2048}
fx["snd_file_progress"] = {"result":{"type":"sndFileProgressXFTP","user":user,
    "chatItem_":{"chatInfo":direct(alice),"chatItem":item("directSnd", 15, "2025-06-02T10:21:00Z", "", file=sending)},
    "fileTransferMeta":{"fileId":6,"fileName":"notes.pdf","filePath":"notes.pdf","fileSize":2048,"chunkSize":1024,"cancelled":False},
    "sentSize":1024,"totalSize":2048}}
failed = copy.deepcopy(doc); failed["fileStatus"] = {"type":"sndError","sndFileError":{"type":"other","fileError":"no servers"}}
fx["snd_file_error"] = {"result":{"type":"sndFileError","user":user,
    "chatItem_":{"chatInfo":direct(alice),"chatItem":item("directSnd", 15, "2025-06-02T10:21:00Z", "", file=failed)},
    "fileTransferMeta":{"fileId":6,"fileName":"notes.pdf","filePath":"notes.pdf","fileSize":2048,"chunkSize":1024,"cancelled":False},
    "errorMessage":"no file servers are configured"}}
fx["cmd_ok"] = {"result":{"type":"cmdOk","user_":user}}
fx["group_reaction_removed"] = {"result":{"type":"chatItemReaction","user":user,"added":False,"reaction":{
    "chatInfo":group(team),"chatReaction":{"chatDir":{"type":"groupRcv","groupMember":bob},"chatItem":bob_msg,
    "sentAt":"2025-06-02T10:22:00Z","reaction":{"type":"emoji","emoji":"❤️"}}}}}
for name, v in fx.items():
    with open(name + ".json", "w") as f:
        json.dump(v, f, indent=1, ensure_ascii=False); f.write("\n")
print(len(fx))
