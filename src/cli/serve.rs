//! `journey serve PATH... [--data DIR] [--listen ADDR] [--config FILE]
//! [--clock wall|events] [--partitions N] [--nats URL] [--check-config]`: checks the
//! project and the config, refuses an unprotected non-loopback address,
//! then runs [`crate::service::serve`] until SIGTERM.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::args::{ClockArg, LogFormat, ServeArgs};
use super::{Exit, Streams, commands};
use crate::service::config::Config;
use crate::service::core::ClockMode;
use crate::service::core::wall_ms;
use crate::service::delivery;
use crate::service::http::Access;
use crate::service::{self, ServeOptions};
use crate::value::format_timestamp;

pub fn serve(args: &ServeArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    let config = match &args.config {
        None => Config::default(),
        Some(path) => match read_config(path) {
            Ok(config) => config,
            Err(why) => {
                streams.error(&format!("`{}`: {why}", path.display()), None)?;
                return Ok(Exit::CouldNotRun);
            }
        },
    };
    let Ok(listen) = args.listen.parse::<SocketAddr>() else {
        let message = format!("`--listen {}` is not an address", args.listen);
        streams.error(&message, Some("write it like `127.0.0.1:8080`"))?;
        return Ok(Exit::CouldNotRun);
    };
    let open = config.ingest.write_keys.is_empty() || config.admin.token.is_none();
    if open && !listen.ip().is_loopback() {
        streams.error(
            &format!("refusing to serve {listen} without write keys and an admin token"),
            Some(
                "set `[ingest] write_keys` and `[admin] token` in `--config`, or listen on \
                 127.0.0.1",
            ),
        )?;
        return Ok(Exit::CouldNotRun);
    }
    let checked = config.checkpoint_every().and_then(|c| {
        Ok((
            c,
            config.feed_retention()?,
            config.journal_retention()?,
            config.tracking()?,
            config.inbox()?,
        ))
    });
    let nats_settings = config
        .lease_ttl()
        .and_then(|ttl| Ok((ttl, config.nats_delivery()?, config.inbox_sweep_every()?)));
    let nats = match nats_settings {
        Ok((lease_ttl, delivery, inbox_sweep_every)) => args
            .nats
            .clone()
            .or_else(|| config.nats.url.clone())
            .map(|url| service::nats::NatsOptions {
                url,
                lease_ttl,
                replicas: config.nats.replicas.unwrap_or(1),
                delivery,
                inbox_sweep_every,
            }),
        Err(why) => {
            streams.error(&why, None)?;
            return Ok(Exit::CouldNotRun);
        }
    };
    let (checkpoint_every, action_retention, journal_retention, tracking, inbox) = match checked {
        Ok(checked) => checked,
        Err(why) => {
            streams.error(&why, None)?;
            return Ok(Exit::CouldNotRun);
        }
    };
    let tracking = tracking.map(Arc::new);
    // Every provider's settings are checked here, through the provider
    // registry (building a provider checks them); the service builds them
    // again once its data directory is open.
    let shared = match delivery::Shared::new().and_then(|mut shared| {
        // Email links are rewritten and `List-Unsubscribe` set when
        // `[tracking]` is configured.
        shared.email_decorator = tracking
            .clone()
            .map(|t| t as Arc<dyn delivery::EmailDecorator>);
        delivery::channels(config.delivery_tables(), &shared, None)?;
        Ok(shared)
    }) {
        Ok(shared) => shared,
        Err(why) => {
            streams.error(&why, None)?;
            return Ok(Exit::CouldNotRun);
        }
    };
    let Some(sources) = commands::load(&args.inputs, streams)? else {
        return Ok(Exit::CouldNotRun);
    };
    let program = match commands::checked(sources.clone(), streams)? {
        Ok(program) => program,
        Err(exit) => return Ok(exit),
    };
    if let Some(unknown) = config
        .channels
        .keys()
        .find(|name| !program.channels.iter().any(|p| *p.name == ***name))
    {
        let known: Vec<String> = program
            .channels
            .iter()
            .map(|c| format!("`{}`", c.name))
            .collect();
        streams.error(
            &format!("`channels.{unknown}`: the project has no such channel"),
            Some(&format!("its channels are {}", known.join(", "))),
        )?;
        return Ok(Exit::CouldNotRun);
    }
    if let Some(why) = unknown_audience(&config, &program) {
        streams.error(&why, None)?;
        return Ok(Exit::CouldNotRun);
    }
    if args.check_config {
        writeln!(streams.stderr, "the config and the project are valid")?;
        return Ok(Exit::Success);
    }
    let options = ServeOptions {
        data: args.data.clone(),
        project: args.inputs.paths.clone(),
        listen,
        clock: args.clock.map(|c| match c {
            ClockArg::Wall => ClockMode::Wall,
            ClockArg::Events => ClockMode::Events,
        }),
        partitions: args.partitions,
        access: Access {
            write_keys: config.ingest.write_keys.clone(),
            admin_token: config.admin.token.clone(),
        },
        checkpoint_every,
        checkpoint_entries: config.checkpoint.entries.unwrap_or(1_000_000),
        action_retention,
        journal_retention,
        tracking,
        inbox: inbox.map(Arc::new),
        channels: config.channels.clone(),
        audiences: config.audiences.clone(),
        shared,
        nats,
    };
    streams.stderr.flush()?;
    // The service logs on the process's stderr, from its own threads.
    let json = args.log_format == LogFormat::Json;
    let log = move |line: &str| {
        if json {
            let entry = serde_json::json!({
                "ts": format_timestamp(wall_ms()),
                "level": "info",
                "message": line,
            });
            eprintln!("{entry}");
        } else {
            eprintln!("journey serve: {line}");
        }
    };
    match service::serve(sources, options, Arc::new(log)) {
        Ok(()) => Ok(Exit::Success),
        Err(e) => {
            streams.error(&e.message, None)?;
            Ok(if e.exit == 2 {
                Exit::CouldNotRun
            } else {
                Exit::Diagnostics
            })
        }
    }
}

/// An audience an `[audiences.<name>]` table syncs that no journey of the
/// project adds anyone to or removes anyone from, in words.
fn unknown_audience(config: &Config, program: &crate::compile::program::Program) -> Option<String> {
    use crate::compile::program::NodeKind;
    let used: std::collections::BTreeSet<&str> = program
        .journeys
        .iter()
        .flat_map(|j| &j.nodes)
        .filter_map(|n| match &n.kind {
            NodeKind::Audience { audience, .. } => Some(&**audience),
            _ => None,
        })
        .collect();
    config.audiences.iter().find_map(|(table, settings)| {
        let names = settings.get("audiences").and_then(toml::Value::as_table)?;
        let unknown = names.keys().find(|name| !used.contains(name.as_str()))?;
        let known: Vec<String> = used.iter().map(|n| format!("`{n}`")).collect();
        Some(format!(
            "`audiences.{table}.audiences.{unknown}`: no journey of the project adds to or \
             removes from audience `{unknown}` (its audiences: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

fn read_config(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    Config::parse(&text, &|name| std::env::var(name).ok())
}
