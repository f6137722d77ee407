use serde::{Deserialize, Serialize};

use crate::domain::{Lang, Message, MessageData, MiniprogramState, OpenId, Page, TemplateId};

/// What `jscode2session` gives back. `session_key` stays on the server.
#[derive(Clone, Deserialize)]
pub struct CodeSession {
    pub openid: String,
    pub session_key: String,
    #[serde(default)]
    pub unionid: Option<String>,
}

impl std::fmt::Debug for CodeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeSession")
            .field("openid", &self.openid)
            .field("unionid", &self.unionid)
            .field("session_key", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, Deserialize)]
pub struct AccessToken {
    pub access_token: String,
    pub expires_in: i64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessToken(<redacted>, expires_in={})", self.expires_in)
    }
}

/// The body of `message/subscribe/send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRequest {
    pub touser: OpenId,
    pub template_id: TemplateId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
    pub data: MessageData,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miniprogram_state: Option<MiniprogramState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<Lang>,
}

impl From<&Message> for SendRequest {
    fn from(m: &Message) -> Self {
        SendRequest {
            touser: m.openid.clone(),
            template_id: m.template_id.clone(),
            page: m.page.clone(),
            data: m.data.clone(),
            miniprogram_state: m.miniprogram_state,
            lang: m.lang,
        }
    }
}

/// WeChat's envelope: errcode may be absent on success.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
}
