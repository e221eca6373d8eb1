//! The operators' read endpoints (SERVICE.md §5): `GET /admin/users/{key}`
//! (one customer as their partition's runtime holds them, see
//! [`crate::runtime::inspect`]) and `GET /admin/journeys` (per journey, the
//! active instances and the counters of simulate's report, summed over
//! the partitions). Each asks the partitions' workers in turn, between
//! entries: nothing stops and nothing is journaled.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::core::{DeployError, Deployed, IngestError};
use super::http::{App, admin_allowed, error};
use super::partitions::partition_of;
use super::storage::Delivery;
use crate::compile::Program;
use crate::runtime::inspect;
use crate::runtime::{Stats, report};
use crate::value::format_timestamp;

fn unavailable(e: IngestError) -> Response {
    match e {
        IngestError::Overloaded => error(StatusCode::SERVICE_UNAVAILABLE, "busy"),
        IngestError::Unavailable(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// `GET /admin/users/{user_key}`.
pub async fn user(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    let p = partition_of(&key, app.core.partitions());
    let asked = key.clone();
    let live = app.core.versions().live().map_or(1, |v| v.number);
    match app
        .core
        .inspect_partition(p, move |runtime| inspect::user(runtime, &asked, live))
        .await
    {
        Ok(Some(view)) => match deliveries(&app, key).await {
            Ok(sends) => user_answer(view, sends),
            Err(why) => error(StatusCode::INTERNAL_SERVER_ERROR, why),
        },
        Ok(None) => no_such_user(&key),
        Err(e) => unavailable(e),
    }
}

/// `/admin/users/{key}`'s answer (either backend): the customer as their
/// partition's runtime holds them ([`inspect::user`]), with their sends.
pub fn user_answer(view: impl serde::Serialize, deliveries: Value) -> Response {
    let mut view = match serde_json::to_value(view) {
        Ok(Value::Object(view)) => view,
        _ => return error(StatusCode::INTERNAL_SERVER_ERROR, "the view"),
    };
    view.insert("deliveries".into(), deliveries);
    axum::Json(view).into_response()
}

/// `/admin/users/{key}` of a customer no event of has reached a journey.
pub fn no_such_user(key: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no event of customer `{key}` has reached a journey"),
    )
}

/// Reads the project from disk again and deploys it (SERVICE.md §8): the
/// work of `POST /admin/reload` and SIGHUP.
pub async fn redeploy(app: &App) -> Result<Deployed, DeployError> {
    let sources = crate::project::load_paths(&app.project)
        .map_err(|e| DeployError::Invalid(e.to_string()))?;
    app.core.deploy(sources).await
}

/// What a deploy did, as `POST /admin/reload` answers it.
pub fn deployed_json(d: &Deployed) -> Value {
    json!({
        "version": d.version,
        "deployed": d.deployed,
        "journeys": d.plan.iter().map(|(name, fate)| {
            json!({"journey": name, "fate": fate.name(), "says": fate.describe()})
        }).collect::<Vec<_>>(),
        "kept": d.kept.iter().map(|(name, version)| {
            json!({"journey": name, "version": version})
        }).collect::<Vec<_>>(),
    })
}

/// `POST /admin/reload`.
pub async fn reload(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    reload_answer(redeploy(&app).await)
}

/// `POST /admin/reload`'s answer (either backend): what the deploy did, a
/// 422 with the diagnostics of a refused project, or a 503.
pub fn reload_answer(deployed: Result<Deployed, DeployError>) -> Response {
    match deployed {
        Ok(d) => axum::Json(deployed_json(&d)).into_response(),
        Err(DeployError::Invalid(why)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "error": "the project was not deployed: it has errors",
                "diagnostics": why.lines().collect::<Vec<_>>(),
            })),
        )
            .into_response(),
        Err(DeployError::Unavailable(why)) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// The most sends `/admin/users/{key}` shows, newest first.
pub const SHOWN_DELIVERIES: usize = 100;

/// A customer's sends, newest first: each with its delivery status and
/// every attempt (SERVICE.md §5: "why did Ana not get the email?").
async fn deliveries(app: &App, key: String) -> Result<Value, String> {
    let storage = app.core.storage().clone();
    let rows = tokio::task::spawn_blocking(move || storage.deliveries_of(&key, SHOWN_DELIVERIES))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.0)?;
    Ok(deliveries_json(rows))
}

/// `/admin/users/{key}`'s `deliveries` (either backend): `(seq, record)`
/// rows, in the order given.
pub fn deliveries_json(rows: Vec<(u64, Delivery)>) -> Value {
    let sends = rows
        .into_iter()
        .map(|(seq, d)| {
            let mut send = json!({
                "seq": seq,
                "message_id": d.message_id,
                "journey": d.journey,
                "template": d.template,
                "channel": d.channel,
                "provider": d.provider,
                "status": d.status,
                "committed_at": format_timestamp(d.committed_ms),
                "attempts": d.attempts.iter().map(|a| json!({
                    "at": format_timestamp(a.at_ms),
                    "outcome": a.outcome,
                    "response": a.response,
                    "latency_ms": a.latency_ms,
                })).collect::<Vec<_>>(),
            });
            if let Some(at) = d.next_at_ms {
                send["next_attempt_at"] = json!(format_timestamp(at));
            }
            if let Some(error) = d.error {
                send["error"] = json!(error);
            }
            send
        })
        .collect();
    Value::Array(sends)
}

/// `GET /admin/journeys`.
pub async fn journeys(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    let mut program: Option<Arc<Program>> = None;
    let mut total = Stats::default();
    for p in 0..app.core.partitions() {
        let asked = app
            .core
            .inspect_partition(p, |runtime| {
                (runtime.program().clone(), runtime.stats().clone())
            })
            .await;
        match asked {
            // Every partition runs one shared program per version: another
            // one means a deploy is half applied.
            Ok((prog, _))
                if program
                    .as_ref()
                    .is_some_and(|seen| !Arc::ptr_eq(seen, &prog)) =>
            {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a deploy is being applied; ask again in a moment",
                );
            }
            Ok((prog, stats)) => {
                total.merge(&stats);
                program = Some(prog);
            }
            Err(e) => return unavailable(e),
        }
    }
    let Some(program) = program else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no partition answered");
    };
    let live = app.core.versions().live().map_or(1, |v| v.number);
    axum::Json(journeys_json(&program, &total, live)).into_response()
}

/// `/admin/journeys`' answer (either backend): per journey of `program`
/// (the partitions' one program), `total` (their stats summed), with the
/// live version `live`.
pub fn journeys_json(program: &Program, total: &Stats, live: u32) -> Value {
    let journeys: Vec<Value> = program
        .journeys
        .iter()
        .enumerate()
        .map(|(i, journey)| {
            let stats = total.journeys.get(i).cloned().unwrap_or_default();
            let mut object = serde_json::Map::new();
            object.insert("journey".into(), json!(&*journey.name));
            object.insert("version".into(), json!(journey.retired.unwrap_or(live)));
            if let Some(kept) = journey.retired {
                // An earlier version, kept for the customers inside it.
                object.insert("kept_from_version".into(), json!(kept));
            }
            object.insert(
                "active_instances".into(),
                json!(report::active_instances(&stats)),
            );
            object.extend(report::journey_json(program, journey, &stats));
            Value::Object(object)
        })
        .collect();
    json!({
        "deployed_version": live,
        "events": report::events_json(total),
        "journeys": journeys,
    })
}
