//! A local fake of GitHub's issue-comments API (list with `per_page`/`page` and a `Link`
//! header, create, update, delete), on 127.0.0.1, for `comment github` tests: it checks
//! the bearer token, records every request, and can answer a fixed error status.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub id: u64,
    pub body: String,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
}

#[derive(Default)]
pub struct World {
    /// Comments of pull request `pr` in repository `owner/name`, oldest first.
    pub comments: Vec<Comment>,
    pub next_id: u64,
    pub requests: Vec<Seen>,
    /// Answer requests with a status and body (`401`, `502`, …) instead.
    pub fail: Option<Fail>,
}

/// Which requests fail, and how.
#[derive(Debug, Clone)]
pub struct Fail {
    pub status: u16,
    pub body: String,
    /// Only requests with this method (`None`: all).
    pub method: Option<String>,
    /// Only this many times (`None`: always).
    pub left: Option<usize>,
}

pub struct Fake {
    pub base: String,
    pub world: Arc<Mutex<World>>,
    token: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub const OWNER: &str = "acme";
pub const REPO: &str = "fleet";
pub const PR: u64 = 7;

#[derive(Clone)]
struct Ctx {
    world: Arc<Mutex<World>>,
    token: String,
    base: String,
}

impl Fake {
    /// Starts the fake on an ephemeral port; it accepts only `token`.
    pub fn start(token: &str) -> Fake {
        let world = Arc::new(Mutex::new(World {
            next_id: 1000,
            ..World::default()
        }));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", std_listener.local_addr().unwrap());
        let ctx = Ctx {
            world: world.clone(),
            token: token.to_string(),
            base: base.clone(),
        };
        let app = Router::new()
            .route(
                "/repos/{owner}/{repo}/issues/{pr}/comments",
                get(list).post(create),
            )
            .route(
                "/repos/{owner}/{repo}/issues/comments/{id}",
                patch(update).delete(delete),
            )
            .fallback(|| async { (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#) })
            .layer(axum::middleware::from_fn_with_state(ctx.clone(), guard))
            .with_state(ctx);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Fake {
            base,
            world,
            token: token.to_string(),
            _shutdown: tx,
        }
    }

    /// Adds a comment (as if someone had posted it).
    pub fn seed(&self, body: &str) -> u64 {
        let mut w = self.world.lock().unwrap();
        w.next_id += 1;
        let id = w.next_id;
        w.comments.push(Comment {
            id,
            body: body.to_string(),
        });
        id
    }

    pub fn comments(&self) -> Vec<Comment> {
        self.world.lock().unwrap().comments.clone()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.world.lock().unwrap().requests.clone()
    }

    /// Requests that would change something.
    pub fn writes(&self) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.method != "GET")
            .collect()
    }

    /// Every request fails with `status` and `body`.
    pub fn fail_with(&self, status: u16, body: &str) {
        self.fail(Fail {
            status,
            body: body.to_string(),
            method: None,
            left: None,
        });
    }

    pub fn fail(&self, fail: Fail) {
        self.world.lock().unwrap().fail = Some(fail);
    }
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// Records the request, answers the configured failure, and checks the token.
async fn guard(
    State(ctx): State<Ctx>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let fail = {
        let mut w = ctx.world.lock().unwrap();
        w.requests.push(Seen {
            method: method.to_string(),
            uri: uri.to_string(),
        });
        match &mut w.fail {
            Some(f)
                if f.method.as_deref().is_none_or(|m| m == method.as_str())
                    && f.left != Some(0) =>
            {
                if let Some(n) = &mut f.left {
                    *n -= 1;
                }
                Some((f.status, f.body.clone()))
            }
            _ => None,
        }
    };
    if let Some((status, body)) = fail {
        return (StatusCode::from_u16(status).unwrap(), body).into_response();
    }
    if auth.as_deref() != Some(format!("Bearer {}", ctx.token).as_str()) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
        );
    }
    next.run(req).await
}

fn comment_json(ctx: &Ctx, c: &Comment) -> Value {
    json!({
        "id": c.id,
        "body": c.body,
        "html_url": format!("https://github.com/{OWNER}/{REPO}/pull/{PR}#issuecomment-{}", c.id),
        "url": format!("{}/repos/{OWNER}/{REPO}/issues/comments/{}", ctx.base, c.id),
        "user": {"login": "github-actions[bot]"},
    })
}

fn known(owner: &str, repo: &str) -> bool {
    owner == OWNER && repo == REPO
}

async fn list(
    State(ctx): State<Ctx>,
    Path((owner, repo, pr)): Path<(String, String, u64)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    uri: Uri,
) -> Response {
    if !known(&owner, &repo) || pr != PR {
        return json_response(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
    }
    let per_page: usize = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
    let per_page = per_page.clamp(1, 100);
    let page: usize = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let w = ctx.world.lock().unwrap();
    let items: Vec<Value> = w
        .comments
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|c| comment_json(&ctx, c))
        .collect();
    let mut headers = HeaderMap::new();
    if page * per_page < w.comments.len() {
        let next = format!(
            "{}{}?per_page={per_page}&page={}",
            ctx.base,
            uri.path(),
            page + 1
        );
        headers.insert(
            "link",
            format!(
                "<{next}>; rel=\"next\", <{}{}?page=1>; rel=\"first\"",
                ctx.base,
                uri.path()
            )
            .parse()
            .unwrap(),
        );
    }
    (headers, json_response(StatusCode::OK, Value::Array(items))).into_response()
}

fn body_of(v: &Value) -> Option<String> {
    v.get("body")?.as_str().map(str::to_string)
}

async fn create(
    State(ctx): State<Ctx>,
    Path((owner, repo, pr)): Path<(String, String, u64)>,
    axum::Json(v): axum::Json<Value>,
) -> Response {
    if !known(&owner, &repo) || pr != PR {
        return json_response(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
    }
    let Some(body) = body_of(&v) else {
        return json_response(StatusCode::UNPROCESSABLE_ENTITY, json!({"message": "body"}));
    };
    if body.chars().count() > 65_536 {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Body is too long (maximum is 65536 characters)"}),
        );
    }
    let mut w = ctx.world.lock().unwrap();
    w.next_id += 1;
    let c = Comment {
        id: w.next_id,
        body,
    };
    w.comments.push(c.clone());
    json_response(StatusCode::CREATED, comment_json(&ctx, &c))
}

async fn update(
    State(ctx): State<Ctx>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    axum::Json(v): axum::Json<Value>,
) -> Response {
    let mut w = ctx.world.lock().unwrap();
    let Some(c) = w.comments.iter_mut().find(|c| c.id == id) else {
        return json_response(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
    };
    if !known(&owner, &repo) {
        return json_response(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
    }
    let Some(body) = body_of(&v) else {
        return json_response(StatusCode::UNPROCESSABLE_ENTITY, json!({"message": "body"}));
    };
    c.body = body;
    let c = c.clone();
    json_response(StatusCode::OK, comment_json(&ctx, &c))
}

async fn delete(
    State(ctx): State<Ctx>,
    method: Method,
    Path((owner, repo, id)): Path<(String, String, u64)>,
) -> Response {
    let _ = method;
    let mut w = ctx.world.lock().unwrap();
    let before = w.comments.len();
    w.comments.retain(|c| c.id != id);
    if !known(&owner, &repo) || w.comments.len() == before {
        return json_response(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
    }
    StatusCode::NO_CONTENT.into_response()
}
