//! `journeys/events.ndjson` is the generator's output for
//! `SynthOptions::example()`, byte for byte, so it never drifts from the
//! generator. After a deliberate change to the generator, rewrite it with
//! `JOURNEY_BLESS=1 cargo test --test io_example_events`.

use std::path::Path;

use journey::io::segment::{EventReader, MessageKind};
use journey::io::synth::{SynthOptions, write_stream};

const EXAMPLE: &str = "journeys/events.ndjson";

fn generated() -> Vec<u8> {
    let mut out = Vec::new();
    write_stream(SynthOptions::example(), &mut out).expect("writing to memory cannot fail");
    out
}

#[test]
fn committed_example_is_the_generator_output() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
    let expected = generated();
    if std::env::var_os("JOURNEY_BLESS").is_some() {
        std::fs::write(&path, &expected).expect("cannot write the example events");
    }
    let committed = std::fs::read(&path).expect("journeys/events.ndjson is missing");
    assert!(
        committed == expected,
        "{EXAMPLE} differs from the generator's output; after a deliberate change run \
         `JOURNEY_BLESS=1 cargo test --test io_example_events`"
    );
}

#[test]
fn example_has_a_few_malformed_lines_and_engagements() {
    let bytes = generated();
    let mut reader = EventReader::new(bytes.as_slice());
    let (mut malformed, mut identifies, mut opened, mut clicked, mut events) = (0, 0, 0, 0, 0);
    while let Some((_, event)) = reader
        .next_event()
        .expect("reading from memory cannot fail")
    {
        let Ok(event) = event else {
            malformed += 1;
            continue;
        };
        events += 1;
        match (event.kind, event.event_name()) {
            (MessageKind::Identify, _) => identifies += 1,
            (_, "message.opened") => opened += 1,
            (_, "message.clicked") => clicked += 1,
            _ => {}
        }
    }
    assert!((1..=6).contains(&malformed), "{malformed} malformed lines");
    assert!((2_500..3_500).contains(&events), "{events} events");
    assert!(identifies >= 200, "{identifies} identifies");
    assert!(opened > 0 && clicked > 0);
}
