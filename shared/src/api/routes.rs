//! Every HTTP route, in one table: which function serves it and what it
//! does. template.yaml declares the same routes to API Gateway;
//! `tests/tests/template.rs` holds the template, this table, the devstack
//! gateway and `make dev`'s watch router together.

/// The HTTP functions behind API Gateway (one Lambda binary each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFunction {
    Login,
    Subscribe,
    Messages,
    Callback,
}

impl HttpFunction {
    /// The binary's name, as template.yaml and `functions/` spell it.
    pub fn name(self) -> &'static str {
        match self {
            HttpFunction::Login => "login",
            HttpFunction::Subscribe => "subscribe",
            HttpFunction::Messages => "messages",
            HttpFunction::Callback => "callback",
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Login,
    ListGrants,
    ReportGrants,
    ScheduleMessage,
    GetMessage,
    CancelMessage,
    StartBroadcast,
    GetBroadcast,
    CancelBroadcast,
    VerifyPushUrl,
    ReceivePush,
}

/// Who may call a route, and how that is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone (`POST /login` gives out the session tokens).
    Open,
    /// A session token of ours (`Authorization: Bearer`).
    Session,
    /// An IAM-signed caller: API Gateway's `AWS_IAM` authorizer, checked again in the function.
    Iam,
    /// WeChat: the push signature.
    PushSignature,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDef {
    pub method: &'static str,
    /// API Gateway's path template (`{id}` is a path parameter).
    pub path: &'static str,
    pub function: HttpFunction,
    pub route: Route,
    pub auth: Auth,
}

const fn def(method: &'static str, path: &'static str, route: Route) -> RouteDef {
    let (function, auth) = match route {
        Route::Login => (HttpFunction::Login, Auth::Open),
        Route::ListGrants | Route::ReportGrants => (HttpFunction::Subscribe, Auth::Session),
        Route::ScheduleMessage
        | Route::GetMessage
        | Route::CancelMessage
        | Route::StartBroadcast
        | Route::GetBroadcast
        | Route::CancelBroadcast => (HttpFunction::Messages, Auth::Iam),
        Route::VerifyPushUrl | Route::ReceivePush => (HttpFunction::Callback, Auth::PushSignature),
    };
    RouteDef { method, path, function, route, auth }
}

pub const ROUTES: &[RouteDef] = &[
    def("POST", "/login", Route::Login),
    def("GET", "/subscriptions", Route::ListGrants),
    def("POST", "/subscriptions", Route::ReportGrants),
    def("POST", "/messages", Route::ScheduleMessage),
    def("GET", "/messages/{id}", Route::GetMessage),
    def("DELETE", "/messages/{id}", Route::CancelMessage),
    def("POST", "/broadcasts", Route::StartBroadcast),
    def("GET", "/broadcasts/{id}", Route::GetBroadcast),
    def("DELETE", "/broadcasts/{id}", Route::CancelBroadcast),
    def("GET", "/wechat/callback", Route::VerifyPushUrl),
    def("POST", "/wechat/callback", Route::ReceivePush),
];

/// A request matched to its route, with the `{id}` segment when the route has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a> {
    pub def: &'static RouteDef,
    pub id: Option<&'a str>,
}

/// Whether `path` ends with `template`'s segments (a stage prefix such as
/// `/prod` may come before them), and the `{id}` segment if there is one.
fn match_tail<'a>(template: &str, path: &'a str) -> Option<Option<&'a str>> {
    let want: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let have: Vec<&'a str> = path.trim_start_matches('/').split('/').collect();
    let tail = have.get(have.len().checked_sub(want.len())?..)?;
    let mut id = None;
    for (w, h) in want.iter().zip(tail) {
        match *w {
            "{id}" if !h.is_empty() => id = Some(*h),
            literal if literal == *h => {}
            _ => return None,
        }
    }
    Some(id)
}

/// The route of `function` that `method` and `path` ask for.
pub fn resolve<'a>(function: HttpFunction, method: &str, path: &'a str) -> Option<Matched<'a>> {
    ROUTES
        .iter()
        .filter(|d| d.function == function && d.method == method)
        .find_map(|d| match_tail(d.path, path).map(|id| Matched { def: d, id }))
}

/// The route a path is routed to, as API Gateway routes it (the whole
/// path, no stage prefix, any method), with its `{id}`.
pub fn route_of(path: &str) -> Option<(&'static RouteDef, Option<&str>)> {
    let segments = path.trim_start_matches('/').split('/').count();
    ROUTES
        .iter()
        .filter(|d| d.path.trim_start_matches('/').split('/').count() == segments)
        .find_map(|d| match_tail(d.path, path).map(|id| (d, id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_templates_with_or_without_a_stage() {
        let m = resolve(HttpFunction::Messages, "GET", "/prod/messages/msg_1").expect("route");
        assert_eq!((m.def.route, m.id), (Route::GetMessage, Some("msg_1")));
        assert_eq!(
            resolve(HttpFunction::Messages, "POST", "/messages").map(|m| m.def.route),
            Some(Route::ScheduleMessage)
        );
        assert_eq!(resolve(HttpFunction::Messages, "PUT", "/messages"), None);
        assert_eq!(resolve(HttpFunction::Messages, "GET", "/messages/"), None);
        assert_eq!(resolve(HttpFunction::Login, "POST", "/messages"), None);
        let (def, id) = route_of("/messages/a").expect("route");
        assert_eq!(
            (def.function, def.path, def.auth, id),
            (HttpFunction::Messages, "/messages/{id}", Auth::Iam, Some("a"))
        );
        assert_eq!(route_of("/messages/a/b"), None);
        assert_eq!(route_of("/prod/login"), None);
    }
}
