use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{AccessToken, AppSecret, CodeSession, Envelope, SendRequest, WechatApi, WechatError, WechatTemplate};

/// WeChat over HTTPS. Built once per cold start; reqwest pools connections.
#[derive(Clone)]
pub struct HttpWechat {
    http: reqwest::Client,
    base: String,
    appid: String,
    secret: AppSecret,
}

impl std::fmt::Debug for HttpWechat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWechat").field("base", &self.base).field("appid", &self.appid).finish_non_exhaustive()
    }
}

impl HttpWechat {
    pub fn new(base: &str, appid: &str, secret: AppSecret) -> Result<Self, WechatError> {
        let http = crate::tls::reqwest_builder()
            .map_err(|e| WechatError::Transport(format!("TLS set-up: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|e| WechatError::Transport(e.without_url().to_string()))?;
        Ok(HttpWechat { http, base: base.trim_end_matches('/').to_string(), appid: appid.to_string(), secret })
    }

    /// Sends, checks the status and the errcode, and decodes `T`.
    /// Errors never contain the URL: it carries the AppSecret or the token.
    async fn call<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, WechatError> {
        let resp = req.send().await.map_err(|e| WechatError::Transport(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(WechatError::Http(status.as_u16()));
        }
        let bytes = resp.bytes().await.map_err(|e| WechatError::Transport(e.without_url().to_string()))?;
        let env: Envelope = serde_json::from_slice(&bytes).map_err(|e| WechatError::Decode(e.to_string()))?;
        if env.errcode != 0 {
            return Err(WechatError::Api { errcode: env.errcode, errmsg: env.errmsg });
        }
        serde_json::from_slice(&bytes).map_err(|e| WechatError::Decode(e.to_string()))
    }
}

impl HttpWechat {
    /// 40125 (invalid appsecret): the AppSecret was reset; drop the one used
    /// so the next call reads the secret again.
    fn refused_secret<T>(&self, result: Result<T, WechatError>, used: &str) -> Result<T, WechatError> {
        if matches!(&result, Err(e) if e.errcode() == Some(40125)) {
            tracing::warn!(var = "WECHAT_SECRET_ARN", "WeChat refused the AppSecret (40125); it will be read again");
            self.secret.forget(used);
        }
        result
    }
}

#[derive(serde::Deserialize)]
struct SendAnswer {
    msgid: serde_json::Value,
}

#[derive(serde::Deserialize)]
struct TemplateList {
    #[serde(default)]
    data: Vec<WechatTemplate>,
}

#[async_trait]
impl WechatApi for HttpWechat {
    async fn code_to_session(&self, code: &str) -> Result<CodeSession, WechatError> {
        let url = format!("{}/sns/jscode2session", self.base);
        let secret = self.secret.get().await?;
        let req = self.http.get(url).query(&[
            ("appid", self.appid.as_str()),
            ("secret", &*secret),
            ("js_code", code),
            ("grant_type", "authorization_code"),
        ]);
        self.refused_secret(self.call(req).await, &secret)
    }

    async fn stable_token(&self, force_refresh: bool) -> Result<AccessToken, WechatError> {
        let url = format!("{}/cgi-bin/stable_token", self.base);
        let secret = self.secret.get().await?;
        let body = json!({"grant_type": "client_credential", "appid": self.appid, "secret": &*secret, "force_refresh": force_refresh});
        self.refused_secret(self.call(self.http.post(url).json(&body)).await, &secret)
    }

    async fn classic_token(&self) -> Result<AccessToken, WechatError> {
        let url = format!("{}/cgi-bin/token", self.base);
        let secret = self.secret.get().await?;
        let req = self.http.get(url).query(&[
            ("grant_type", "client_credential"),
            ("appid", self.appid.as_str()),
            ("secret", &*secret),
        ]);
        self.refused_secret(self.call(req).await, &secret)
    }

    async fn send_subscribe_message(&self, access_token: &str, msg: &SendRequest) -> Result<u64, WechatError> {
        let url = format!("{}/cgi-bin/message/subscribe/send", self.base);
        let req = self.http.post(url).query(&[("access_token", access_token)]).json(msg);
        let answer: SendAnswer = self.call(req).await?;
        // msgid is a JSON number beyond 2^53; some proxies turn it into a string.
        match answer.msgid {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| WechatError::Decode("msgid missing or not a number".into()))
    }

    async fn templates(&self, access_token: &str) -> Result<Vec<WechatTemplate>, WechatError> {
        let url = format!("{}/wxaapi/newtmpl/gettemplate", self.base);
        let list: TemplateList = self.call(self.http.get(url).query(&[("access_token", access_token)])).await?;
        Ok(list.data)
    }
}
