//! The corpus: each variant is the base domain with one mistake or one legal
//! odd shape, and what the compiler must say about it.
//!
//! An edit replaces every occurrence of its first text (which must occur) by
//! its second. A mistake names its token as a context that occurs once in the
//! edited source, the token between `«` and `»`, and words its message must
//! contain.

/// What a variant must do.
pub(crate) enum Expect {
    /// Compiles without an error or a warning.
    Legal,
    /// Exactly one error, on the marked token, saying `says`.
    Error {
        at: &'static str,
        says: &'static str,
    },
}

/// One variant of the base domain.
pub(crate) struct Variant {
    pub(crate) name: &'static str,
    pub(crate) edits: Vec<(&'static str, String)>,
    pub(crate) expect: Expect,
}

impl Variant {
    /// The base with every edit applied.
    pub(crate) fn source(&self, base: &str) -> String {
        let mut source = base.to_owned();
        for (find, replace) in &self.edits {
            assert!(
                source.contains(find),
                "variant `{}`: `{find}` is not in the source",
                self.name
            );
            source = source.replace(find, replace);
        }
        source
    }
}

type Edit = (&'static str, &'static str);

fn legal(name: &'static str, edits: &[Edit]) -> Variant {
    Variant {
        name,
        edits: edits.iter().map(|(f, r)| (*f, (*r).to_owned())).collect(),
        expect: Expect::Legal,
    }
}

fn mistake(name: &'static str, edits: &[Edit], at: &'static str, says: &'static str) -> Variant {
    Variant {
        name,
        edits: edits.iter().map(|(f, r)| (*f, (*r).to_owned())).collect(),
        expect: Expect::Error { at, says },
    }
}

/// Items added before `fn main`.
fn append(name: &'static str, items: &str, expect: Expect) -> Variant {
    Variant {
        name,
        edits: vec![("fn main() {}", format!("{items}\nfn main() {{}}"))],
        expect,
    }
}

fn error(at: &'static str, says: &'static str) -> Expect {
    Expect::Error { at, says }
}

// Snippets of the base that variants edit.
const EVENT_ATTR: &str = "#[event(name = \"lamp.switched_on\", version = 1)]";
const AGG_EVENTS: &str = "    events(SwitchedOn, SwitchedOff),";
const AGG_COMMANDS: &str = "    commands(TurnOn, TurnOff),";
const AGG_NAME: &str = "    name = \"lamp\",";
const AGG_ERROR: &str = "    error = LampError,\n";
const AGG_SNAPSHOT: &str = "    snapshot_every = 10,";
const COUNTER_ATTR: &str = "#[aggregate(events(Ticked), error = LampError)]";
const TURN_ON_ATTR: &str = "#[command(aggregate = Lamp, name = \"lamp.turn_on\")]";
const TURN_OFF_ATTR: &str = "#[command(aggregate = Lamp)]\npub struct TurnOff";
const PROJECTION_ATTR: &str =
    "#[projection(name = \"lamp_status\", events(SwitchedOn, SwitchedOff))]";
const QUERY_ATTR: &str =
    "#[query(projection = LampStatus, output = Option<bool>, name = \"lamp.is_on\")]";

/// The derives on a plain event type, for added events.
const EVENT_DERIVES: &str = "#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]";

pub(crate) fn all() -> Vec<Variant> {
    let mut v = Vec::new();
    v.extend(event_variants());
    v.extend(aggregate_variants());
    v.extend(separator_variants());
    v.extend(command_variants());
    v.extend(projection_variants());
    v.extend(query_variants());
    v.extend(placement_variants());
    v.extend(evolution_variants());
    v.extend(macro_variants());
    v
}

fn event_variants() -> Vec<Variant> {
    vec![
        mistake(
            "event-name-empty",
            &[(EVENT_ATTR, "#[event(name = \"\", version = 1)]")],
            "#[event(name = «\"\"»",
            "must not be empty",
        ),
        mistake(
            "event-name-blank",
            &[(EVENT_ATTR, "#[event(name = \"   \", version = 1)]")],
            "#[event(name = «\"   \"»",
            "must not be blank",
        ),
        mistake(
            "event-name-with-space",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp switched\", version = 1)]",
            )],
            "#[event(name = «\"lamp switched\"»",
            "found a space",
        ),
        mistake(
            "event-name-only-dots",
            &[(EVENT_ATTR, "#[event(name = \"...\", version = 1)]")],
            "#[event(name = «\"...\"»",
            "a letter or a digit",
        ),
        mistake(
            "event-name-with-suffix",
            &[(EVENT_ATTR, "#[event(name = \"lamp.on\"_x, version = 1)]")],
            "#[event(name = «\"lamp.on\"_x»",
            "suffix",
        ),
        mistake(
            "event-name-raw-string-ok",
            &[
                (EVENT_ATTR, "#[event(name = r\"lamp.on\", version = 1)]"),
                ("r\"lamp.on\", version = 1", "r\"lamp.on\", version = 0"),
            ],
            "r\"lamp.on\", version = «0»",
            "found 0",
        ),
        mistake(
            "event-name-an-integer",
            &[(EVENT_ATTR, "#[event(name = 5, version = 1)]")],
            "#[event(name = «5»",
            "expected `name = \"<name>\"`",
        ),
        mistake(
            "event-name-a-path",
            &[(EVENT_ATTR, "#[event(name = lamp_on, version = 1)]")],
            "#[event(name = «lamp_on»",
            "expected `name = \"<name>\"`",
        ),
        mistake(
            "event-version-zero",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = 0)]",
            )],
            "version = «0»",
            "found 0",
        ),
        mistake(
            "event-version-negative",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = -1)]",
            )],
            "version = «-1»",
            "negative",
        ),
        mistake(
            "event-version-a-string",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = \"1\")]",
            )],
            "version = «\"1\"»",
            "expected `version = <integer >= 1>`",
        ),
        mistake(
            "event-version-too-large",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = 99999999999)]",
            )],
            "version = «99999999999»",
            "too large",
        ),
        mistake(
            "event-version-a-float",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = 1.5)]",
            )],
            "version = «1.5»",
            "expected `version = <integer >= 1>`",
        ),
        mistake(
            "event-version-with-suffix",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = 2u32)]",
            )],
            "version = «2u32»",
            "suffix",
        ),
        mistake(
            "event-version-without-value",
            &[(EVENT_ATTR, "#[event(name = \"lamp.switched_on\", version)]")],
            "«version»)]",
            "expected `version = <integer >= 1>`",
        ),
        mistake(
            "event-key-typo",
            &[(
                EVENT_ATTR,
                "#[event(nmae = \"lamp.switched_on\", version = 1)]",
            )],
            "#[event(«nmae»",
            "did you mean `name`",
        ),
        mistake(
            "event-key-wrong-case",
            &[(
                EVENT_ATTR,
                "#[event(Name = \"lamp.switched_on\", version = 1)]",
            )],
            "#[event(«Name»",
            "did you mean `name`",
        ),
        mistake(
            "event-key-unknown",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = 1, tag = \"x\")]",
            )],
            "«tag» = \"x\"",
            "unknown key `tag`",
        ),
        mistake(
            "event-key-twice",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = 1, version = 2)]",
            )],
            "version = 1, «version» = 2",
            "duplicate key `version`",
        ),
        mistake(
            "event-attribute-twice-same-key",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\")]\n#[event(name = \"lamp.on\")]",
            )],
            "#[event(«name» = \"lamp.on\")]",
            "duplicate key `name`",
        ),
        legal(
            "event-attribute-split-in-two",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\")]\n#[event(version = 1)]",
            )],
        ),
        legal(
            "event-trailing-comma",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = 1,)]",
            )],
        ),
        legal("event-empty-attribute", &[(EVENT_ATTR, "#[event()]")]),
        legal("event-bare-attribute", &[(EVENT_ATTR, "#[event]")]),
        legal(
            "event-raw-string-name",
            &[(EVENT_ATTR, "#[event(name = r\"lamp.switched_on\")]")],
        ),
        legal(
            "event-name-with-every-allowed-character",
            &[(EVENT_ATTR, "#[event(name = \"lamp/v2.switched-on_é\")]")],
        ),
        mistake(
            "event-name-value-attribute",
            &[(EVENT_ATTR, "#[event = \"lamp.switched_on\"]")],
            "#[event «= \"lamp.switched_on\"»]",
            "not `#[event = ..]`",
        ),
        legal(
            "event-cfg-attr",
            &[(
                EVENT_ATTR,
                "#[cfg_attr(all(), event(name = \"lamp.switched_on\", version = 1))]",
            )],
        ),
        legal(
            "event-cfg-attr-disabled-mistake",
            &[(EVENT_ATTR, "#[cfg_attr(any(), event(name = 5))]")],
        ),
        append(
            "event-tuple-struct",
            &format!("{EVENT_DERIVES}\npub struct Dimmed(pub u8);"),
            Expect::Legal,
        ),
        append(
            "event-raw-identifier",
            &format!("{EVENT_DERIVES}\npub struct r#Dimmed {{ pub r#type: u8 }}"),
            Expect::Legal,
        ),
        append(
            "event-generic",
            &format!("{EVENT_DERIVES}\npub struct Dimmed<T> {{ pub level: T }}"),
            error(
                "pub struct Dimmed«<T>»",
                "does not support generic parameters",
            ),
        ),
        append(
            "event-lifetime",
            &format!("{EVENT_DERIVES}\npub struct Dimmed<'a> {{ pub by: &'a str }}"),
            error(
                "pub struct Dimmed«<'a>»",
                "does not support generic parameters",
            ),
        ),
        append(
            "event-where-clause",
            &format!("{EVENT_DERIVES}\npub struct Dimmed where u8: Copy {{ pub level: u8 }}"),
            error(
                "pub struct Dimmed «where u8: Copy» {",
                "does not support where clauses",
            ),
        ),
        append(
            "event-enum",
            &format!("{EVENT_DERIVES}\npub enum Dimmed {{ Low, High }}"),
            error("pub «enum» Dimmed", "not enums"),
        ),
        append(
            "event-inside-a-function",
            &format!("fn define() {{\n    {EVENT_DERIVES}\n    struct Local;\n}}"),
            Expect::Legal,
        ),
        mistake(
            "event-mistake-in-a-listed-event",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = 0)]",
            )],
            "version = «0»",
            "found 0",
        ),
        mistake(
            "event-without-serialize",
            &[(
                "#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]\npub struct SwitchedOff;",
                "#[derive(Event, Deserialize, Clone, Debug, PartialEq)]\npub struct SwitchedOff;",
            )],
            "#[derive(Event, Deserialize, Clone, Debug, PartialEq)]\npub struct «SwitchedOff»;",
            "Serialize",
        ),
    ]
}

fn aggregate_variants() -> Vec<Variant> {
    vec![
        mistake(
            "aggregate-events-self-type",
            &[(AGG_EVENTS, "    events(SwitchedOn, SwitchedOff, Self),")],
            "SwitchedOff, «Self»)",
            "expected an event type",
        ),
        mistake(
            "aggregate-events-crate",
            &[(AGG_EVENTS, "    events(SwitchedOn, SwitchedOff, crate),")],
            "SwitchedOff, «crate»)",
            "expected an event type",
        ),
        mistake(
            "aggregate-events-self-module",
            &[(AGG_EVENTS, "    events(SwitchedOn, SwitchedOff, self),")],
            "SwitchedOff, «self»)",
            "expected an event type",
        ),
        mistake(
            "aggregate-events-super",
            &[(AGG_EVENTS, "    events(SwitchedOn, SwitchedOff, super),")],
            "SwitchedOff, «super»)",
            "expected an event type",
        ),
        mistake(
            "aggregate-events-keyword",
            &[(AGG_EVENTS, "    events(SwitchedOn, SwitchedOff, type),")],
            "SwitchedOff, «type»)",
            "expected an event type",
        ),
        mistake(
            "aggregate-events-integer",
            &[(AGG_EVENTS, "    events(SwitchedOn, SwitchedOff, 1),")],
            "SwitchedOff, «1»)",
            "expected an event type",
        ),
        mistake(
            "aggregate-events-string",
            &[(AGG_EVENTS, "    events(SwitchedOn, \"SwitchedOff\"),")],
            "SwitchedOn, «\"SwitchedOff\"»)",
            "without quotes",
        ),
        mistake(
            "aggregate-events-reference",
            &[(AGG_EVENTS, "    events(SwitchedOn, &SwitchedOff),")],
            "SwitchedOn, «&SwitchedOff»)",
            "expected an event type",
        ),
        mistake(
            "aggregate-events-trait-object",
            &[(AGG_EVENTS, "    events(SwitchedOn, dyn SwitchedOff),")],
            "SwitchedOn, «dyn SwitchedOff»)",
            "expected an event type",
        ),
        mistake(
            "aggregate-events-not-a-list",
            &[
                (AGG_EVENTS, "    events = SwitchedOn,"),
                ("Ok(events![SwitchedOff])", "Ok(Events::new())"),
            ],
            "events «= SwitchedOn»,",
            "expected `events(<event>, ..)`",
        ),
        mistake(
            "aggregate-events-with-equals",
            &[(AGG_EVENTS, "    events = (SwitchedOn, SwitchedOff),")],
            "events «=» (SwitchedOn",
            "expected `events(<event>, ..)`",
        ),
        mistake(
            "aggregate-events-in-brackets",
            &[(AGG_EVENTS, "    events[SwitchedOn, SwitchedOff],")],
            "events«[SwitchedOn, SwitchedOff]»,",
            "expected `events(<event>, ..)`",
        ),
        mistake(
            "aggregate-events-wrong-case",
            &[(AGG_EVENTS, "    Events(SwitchedOn, SwitchedOff),")],
            "«Events»(SwitchedOn",
            "did you mean `events`",
        ),
        mistake(
            "aggregate-events-singular",
            &[(AGG_EVENTS, "    event(SwitchedOn, SwitchedOff),")],
            "«event»(SwitchedOn",
            "did you mean `events`",
        ),
        mistake(
            "aggregate-events-missing-comma",
            &[(AGG_EVENTS, "    events(SwitchedOn SwitchedOff),")],
            "events(SwitchedOn «SwitchedOff»)",
            "expected `,`",
        ),
        mistake(
            "aggregate-events-double-comma",
            &[(AGG_EVENTS, "    events(SwitchedOn,, SwitchedOff),")],
            "events(SwitchedOn,«,» SwitchedOff)",
            "expected an event type",
        ),
        legal(
            "aggregate-events-trailing-comma",
            &[(AGG_EVENTS, "    events(SwitchedOn, SwitchedOff,),")],
        ),
        legal(
            "aggregate-events-by-path",
            &[(
                AGG_EVENTS,
                "    events(crate::SwitchedOn, self::SwitchedOff),",
            )],
        ),
        mistake(
            "aggregate-events-listed-twice",
            &[(
                AGG_EVENTS,
                "    events(SwitchedOn, SwitchedOff, SwitchedOn),",
            )],
            "SwitchedOff, «SwitchedOn»)",
            "listed twice",
        ),
        mistake(
            "aggregate-events-twice-under-two-paths",
            &[(
                AGG_EVENTS,
                "    events(SwitchedOn, SwitchedOff, crate::SwitchedOn),",
            )],
            "SwitchedOff, «crate::SwitchedOn»)",
            "`SwitchedOn`",
        ),
        mistake(
            "aggregate-event-not-an-event",
            &[
                (AGG_EVENTS, "    events(SwitchedOn, SwitchedOff, Dimmed),"),
                (
                    "fn main() {}",
                    "#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]\npub struct Dimmed;\n\nimpl Apply<Dimmed> for Lamp {\n    fn apply(&mut self, _: &Dimmed) {}\n}\n\nfn main() {}",
                ),
            ],
            "SwitchedOff, «Dimmed»)",
            "`Dimmed` is not an event",
        ),
        mistake(
            "aggregate-event-unknown-type",
            &[(AGG_EVENTS, "    events(SwitchedOn, SwitchedOff, Dimmed),")],
            "SwitchedOff, «Dimmed»)",
            "cannot find type `Dimmed`",
        ),
        mistake(
            "aggregate-handler-emits-an-undeclared-event",
            &[("Ok(events![SwitchedOff])", "Ok(events![Ticked])")],
            "Ok(events![«Ticked»])",
            "`Ticked` is not one of this aggregate's events",
        ),
        mistake(
            "aggregate-missing-apply",
            &[(
                "impl Apply<SwitchedOff> for Lamp {\n    fn apply(&mut self, _: &SwitchedOff) {\n        self.on = false;\n    }\n}\n",
                "",
            )],
            "events(SwitchedOn, «SwitchedOff»),",
            "does not apply it",
        ),
        mistake(
            "aggregate-missing-events",
            &[(COUNTER_ATTR, "#[aggregate(error = LampError)]")],
            "#[«aggregate»(error = LampError)]",
            "missing `events(..)`",
        ),
        mistake(
            "aggregate-events-empty",
            &[(COUNTER_ATTR, "#[aggregate(events(), error = LampError)]")],
            "#[aggregate(«events»(), error",
            "at least one event",
        ),
        mistake(
            "aggregate-commands-empty",
            &[(
                COUNTER_ATTR,
                "#[aggregate(events(Ticked), commands(), error = LampError)]",
            )],
            "«commands»()",
            "at least one command",
        ),
        mistake(
            "aggregate-commands-keyword",
            &[(AGG_COMMANDS, "    commands(TurnOn, TurnOff, Self),")],
            "TurnOff, «Self»)",
            "expected a command type",
        ),
        mistake(
            "aggregate-commands-literal",
            &[(AGG_COMMANDS, "    commands(TurnOn, TurnOff, 2),")],
            "TurnOff, «2»)",
            "expected a command type",
        ),
        mistake(
            "aggregate-commands-listed-twice",
            &[(AGG_COMMANDS, "    commands(TurnOn, TurnOff, TurnOn),")],
            "TurnOff, «TurnOn»)",
            "listed twice",
        ),
        mistake(
            "aggregate-command-of-another-aggregate",
            &[(
                COUNTER_ATTR,
                "#[aggregate(events(Ticked), commands(TurnOn), error = LampError)]",
            )],
            "commands(«TurnOn»), error = LampError)]",
            "`TurnOn`",
        ),
        mistake(
            "aggregate-command-not-a-command",
            &[(AGG_COMMANDS, "    commands(TurnOn, TurnOff, SwitchedOn),")],
            "TurnOff, «SwitchedOn»)",
            "`SwitchedOn` is not a command",
        ),
        mistake(
            "aggregate-missing-error",
            &[(AGG_ERROR, "")],
            "#[«aggregate»(\n    name",
            "missing `error = <type>`",
        ),
        mistake(
            "aggregate-error-a-string",
            &[(AGG_ERROR, "    error = \"LampError\",\n")],
            "error = «\"LampError\"»",
            "without quotes",
        ),
        mistake(
            "aggregate-error-key-typo",
            &[(AGG_ERROR, "    eror = LampError,\n")],
            "«eror» = LampError",
            "did you mean `error`",
        ),
        mistake(
            "aggregate-error-with-colon",
            &[(AGG_ERROR, "    error: LampError,\n")],
            "error«:» LampError",
            "expected `error = <type>`",
        ),
        mistake(
            "aggregate-error-without-equals",
            &[(AGG_ERROR, "    error LampError,\n")],
            "error «LampError»,",
            "expected `error = <type>`",
        ),
        mistake(
            "aggregate-error-without-value",
            &[(AGG_ERROR, "    error =,\n")],
            "error «=»,",
            "expected `error = <type>`",
        ),
        legal(
            "aggregate-services-boxed-trait-object",
            &[(
                COUNTER_ATTR,
                "#[aggregate(events(Ticked), error = LampError, services = Box<dyn Fn() -> u64 + Send + Sync>)]",
            )],
        ),
        mistake(
            "aggregate-snapshot-zero",
            &[(AGG_SNAPSHOT, "    snapshot_every = 0,")],
            "snapshot_every = «0»",
            "found 0",
        ),
        mistake(
            "aggregate-snapshot-negative",
            &[(AGG_SNAPSHOT, "    snapshot_every = -10,")],
            "snapshot_every = «-10»",
            "negative",
        ),
        mistake(
            "aggregate-snapshot-too-large",
            &[(AGG_SNAPSHOT, "    snapshot_every = 18446744073709551616,")],
            "snapshot_every = «18446744073709551616»",
            "too large",
        ),
        mistake(
            "aggregate-snapshot-a-string",
            &[(AGG_SNAPSHOT, "    snapshot_every = \"10\",")],
            "snapshot_every = «\"10\"»",
            "expected `snapshot_every = <integer >= 1>`",
        ),
        legal(
            "aggregate-snapshot-with-underscores",
            &[(AGG_SNAPSHOT, "    snapshot_every = 1_000,")],
        ),
        mistake(
            "aggregate-snapshot-without-serde",
            &[(
                "#[derive(Aggregate, Default, Serialize, Deserialize)]",
                "#[derive(Aggregate, Default)]",
            )],
            "«snapshot_every» = 10",
            "Serialize",
        ),
        mistake(
            "aggregate-name-empty",
            &[(AGG_NAME, "    name = \"\",")],
            "name = «\"\"»,",
            "must not be empty",
        ),
        mistake(
            "aggregate-name-with-colon",
            &[(AGG_NAME, "    name = \"lamp:1\",")],
            "name = «\"lamp:1\"»,",
            "found `:`",
        ),
        mistake(
            "aggregate-key-unknown",
            &[(AGG_NAME, "    name = \"lamp\",\n    color = \"red\",")],
            "«color» = \"red\"",
            "unknown key `color`",
        ),
        mistake(
            "aggregate-key-typo-in-list",
            &[(AGG_COMMANDS, "    comands(TurnOn, TurnOff),")],
            "«comands»(TurnOn",
            "did you mean `commands`",
        ),
        mistake(
            "aggregate-key-twice",
            &[(AGG_NAME, "    name = \"lamp\",\n    name = \"light\",")],
            "«name» = \"light\"",
            "duplicate key `name`",
        ),
        mistake(
            "aggregate-bare-attribute",
            &[(COUNTER_ATTR, "#[aggregate]")],
            "#[«aggregate»]\npub struct Counter",
            "#[aggregate(",
        ),
        mistake(
            "aggregate-name-value-attribute",
            &[(COUNTER_ATTR, "#[aggregate = \"counter\"]")],
            "#[aggregate «= \"counter\"»]",
            "not `#[aggregate = ..]`",
        ),
        mistake(
            "aggregate-missing-attribute",
            &[(COUNTER_ATTR, "")],
            "pub struct «Counter» {",
            "missing `#[aggregate(",
        ),
        mistake(
            "aggregate-event-attribute-instead",
            &[(COUNTER_ATTR, "#[event(events(Ticked), error = LampError)]")],
            "#[«event»(events(Ticked)",
            "#[aggregate(..)]",
        ),
        legal(
            "aggregate-attribute-split-in-two",
            &[(
                COUNTER_ATTR,
                "#[aggregate(events(Ticked))]\n#[aggregate(error = LampError)]",
            )],
        ),
        legal(
            "aggregate-cfg-attr",
            &[(
                COUNTER_ATTR,
                "#[cfg_attr(all(), aggregate(events(Ticked), error = LampError))]",
            )],
        ),
        legal(
            "aggregate-unit-struct",
            &[
                (
                    "pub struct Counter {\n    ticks: u64,\n}",
                    "pub struct Counter;",
                ),
                ("self.ticks += 1;", ""),
            ],
        ),
        mistake(
            "aggregate-tuple-struct",
            &[
                (
                    "pub struct Counter {\n    ticks: u64,\n}",
                    "pub struct Counter(u64);",
                ),
                ("self.ticks += 1;", "self.0 += 1;"),
            ],
            "pub struct Counter«(u64)»;",
            "not a tuple struct",
        ),
        mistake(
            "aggregate-enum",
            &[
                (
                    "pub struct Counter {\n    ticks: u64,\n}",
                    "#[allow(dead_code)]\npub enum Counter {\n    #[default]\n    Zero,\n}",
                ),
                ("self.ticks += 1;", ""),
            ],
            "pub «enum» Counter",
            "not enums",
        ),
        mistake(
            "aggregate-generic",
            &[
                (
                    "pub struct Counter {\n    ticks: u64,\n}",
                    "pub struct Counter<T> {\n    ticks: T,\n}",
                ),
                (
                    "impl Apply<Ticked> for Counter {\n    fn apply(&mut self, _: &Ticked) {\n        self.ticks += 1;\n    }\n}",
                    "impl<T> Apply<Ticked> for Counter<T> {\n    fn apply(&mut self, _: &Ticked) {}\n}",
                ),
            ],
            "pub struct Counter«<T>»",
            "does not support generic parameters",
        ),
        mistake(
            "aggregate-lifetime",
            &[
                (
                    "pub struct Counter {\n    ticks: u64,\n}",
                    "pub struct Counter<'a> {\n    label: &'a str,\n}",
                ),
                (
                    "impl Apply<Ticked> for Counter {\n    fn apply(&mut self, _: &Ticked) {\n        self.ticks += 1;\n    }\n}",
                    "impl Apply<Ticked> for Counter<'_> {\n    fn apply(&mut self, _: &Ticked) {}\n}",
                ),
            ],
            "pub struct Counter«<'a>»",
            "does not support generic parameters",
        ),
        mistake(
            "aggregate-where-clause",
            &[(
                "pub struct Counter {\n    ticks: u64,\n}",
                "pub struct Counter\nwhere\n    u64: Copy,\n{\n    ticks: u64,\n}",
            )],
            "pub struct Counter\n«where\n    u64: Copy,»",
            "does not support where clauses",
        ),
        legal(
            "aggregate-services-reference",
            &[(
                COUNTER_ATTR,
                "#[aggregate(events(Ticked), error = LampError, services = &'static str)]",
            )],
        ),
        legal(
            "aggregate-raw-identifier-event",
            &[
                (AGG_EVENTS, "    events(SwitchedOn, SwitchedOff, r#Dimmed),"),
                (
                    "fn main() {}",
                    "#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]\npub struct r#Dimmed;\n\nimpl Apply<Dimmed> for Lamp {\n    fn apply(&mut self, _: &Dimmed) {}\n}\n\nfn main() {}",
                ),
            ],
        ),
        append(
            "aggregate-inside-a-function",
            &format!(
                "fn define() {{\n    {EVENT_DERIVES}\n    struct Rang;\n\n    #[derive(Aggregate, Default)]\n    #[aggregate(events(Rang), error = LampError)]\n    struct Bell;\n\n    impl Apply<Rang> for Bell {{\n        fn apply(&mut self, _: &Rang) {{}}\n    }}\n}}"
            ),
            Expect::Legal,
        ),
    ]
}

fn separator_variants() -> Vec<Variant> {
    vec![
        mistake(
            "keys-missing-comma",
            &[(AGG_NAME, "    name = \"lamp\"")],
            "name = \"lamp\"\n    «events»(",
            "expected `,`",
        ),
        mistake(
            "keys-double-comma",
            &[(AGG_NAME, "    name = \"lamp\",,")],
            "name = \"lamp\",«,»",
            "expected a key",
        ),
        mistake(
            "keys-leading-comma",
            &[(
                COUNTER_ATTR,
                "#[aggregate(, events(Ticked), error = LampError)]",
            )],
            "#[aggregate(«,» events(Ticked)",
            "expected a key",
        ),
        mistake(
            "keys-semicolon",
            &[(AGG_NAME, "    name = \"lamp\";")],
            "name = \"lamp\"«;»",
            "expected `,`",
        ),
        mistake(
            "keys-missing-comma-in-command",
            &[(
                TURN_ON_ATTR,
                "#[command(aggregate = Lamp name = \"lamp.turn_on\")]",
            )],
            "aggregate = Lamp «name» = ",
            "expected `,`",
        ),
        mistake(
            "keys-missing-comma-in-query",
            &[(
                QUERY_ATTR,
                "#[query(projection = LampStatus output = Option<bool>, name = \"lamp.is_on\")]",
            )],
            "projection = LampStatus «output»",
            "expected `,`",
        ),
        mistake(
            "keys-key-is-a-literal",
            &[(EVENT_ATTR, "#[event(\"lamp.switched_on\", version = 1)]")],
            "#[event(«\"lamp.switched_on\"», version",
            "expected a key",
        ),
        mistake(
            "keys-key-is-a-path",
            &[(
                EVENT_ATTR,
                "#[event(cqrs::name = \"lamp.switched_on\", version = 1)]",
            )],
            "#[event(cqrs«::»name",
            "expected",
        ),
    ]
}

fn command_variants() -> Vec<Variant> {
    vec![
        mistake(
            "command-missing-aggregate",
            &[(TURN_OFF_ATTR, "#[command()]\npub struct TurnOff")],
            "#[«command»()]",
            "missing `#[command(aggregate = <type>)]`",
        ),
        mistake(
            "command-missing-attribute",
            &[(TURN_OFF_ATTR, "pub struct TurnOff")],
            "pub struct «TurnOff»(",
            "missing `#[command(aggregate = <type>)]`",
        ),
        mistake(
            "command-aggregate-key-typo",
            &[(
                TURN_OFF_ATTR,
                "#[command(agregate = Lamp)]\npub struct TurnOff",
            )],
            "#[command(«agregate» = Lamp)]",
            "did you mean `aggregate`",
        ),
        mistake(
            "command-aggregate-self",
            &[(
                TURN_OFF_ATTR,
                "#[command(aggregate = Self)]\npub struct TurnOff",
            )],
            "#[command(aggregate = «Self»)]",
            "`Self`",
        ),
        mistake(
            "command-aggregate-reference",
            &[(
                TURN_OFF_ATTR,
                "#[command(aggregate = &Lamp)]\npub struct TurnOff",
            )],
            "#[command(aggregate = «&Lamp»)]",
            "expected an aggregate type",
        ),
        mistake(
            "command-aggregate-trait-object",
            &[(
                TURN_OFF_ATTR,
                "#[command(aggregate = dyn Lamp)]\npub struct TurnOff",
            )],
            "#[command(aggregate = «dyn Lamp»)]",
            "expected an aggregate type",
        ),
        mistake(
            "command-aggregate-a-string",
            &[(
                TURN_OFF_ATTR,
                "#[command(aggregate = \"Lamp\")]\npub struct TurnOff",
            )],
            "#[command(aggregate = «\"Lamp\"»)]",
            "without quotes",
        ),
        mistake(
            "command-aggregate-unknown-type",
            &[(
                TURN_OFF_ATTR,
                "#[command(aggregate = Lammp)]\npub struct TurnOff",
            )],
            "#[command(aggregate = «Lammp»)]",
            "cannot find type `Lammp`",
        ),
        mistake(
            "command-aggregate-not-an-aggregate",
            &[
                (
                    TURN_OFF_ATTR,
                    "#[command(aggregate = Bulb)]\npub struct TurnOff",
                ),
                ("fn main() {}", "pub struct Bulb;\n\nfn main() {}"),
            ],
            "#[command(aggregate = «Bulb»)]",
            "`Bulb` is not an aggregate",
        ),
        mistake(
            "command-aggregate-a-projection",
            &[(
                TURN_OFF_ATTR,
                "#[command(aggregate = LampStatus)]\npub struct TurnOff",
            )],
            "#[command(aggregate = «LampStatus»)]",
            "`LampStatus` is not an aggregate",
        ),
        mistake(
            "command-missing-handler",
            &[(
                "impl Handle<TurnOff> for Lamp {\n    fn handle(&self, _: &TurnOff) -> Result<Events<Self>, LampError> {\n        Ok(events![SwitchedOff])\n    }\n}\n",
                "",
            )],
            "#[command(aggregate = «Lamp»)]\npub struct TurnOff",
            "does not handle it",
        ),
        mistake(
            "command-async-without-async-handler",
            &[(
                TURN_OFF_ATTR,
                "#[command(aggregate = Lamp, async)]\npub struct TurnOff",
            )],
            "#[command(aggregate = Lamp, «async»)]",
            "has no async handler",
        ),
        mistake(
            "command-async-with-a-value",
            &[(
                TURN_OFF_ATTR,
                "#[command(aggregate = Lamp, async = true)]\npub struct TurnOff",
            )],
            "async «= true»",
            "without a value",
        ),
        mistake(
            "command-no-id",
            &[(
                "    #[id]\n    pub lamp: String,\n    pub brightness: u8,",
                "    pub lamp: String,\n    pub brightness: u8,",
            )],
            "pub struct «TurnOn» {",
            "missing `#[id]`",
        ),
        mistake(
            "command-two-ids",
            &[(
                "    #[id]\n    pub lamp: String,\n    pub brightness: u8,",
                "    #[id]\n    pub lamp: String,\n    #[id]\n    pub brightness: u8,",
            )],
            "«#[id]»\n    pub brightness",
            "second one",
        ),
        mistake(
            "command-id-with-arguments",
            &[(
                "    #[id]\n    pub lamp: String,",
                "    #[id(lamp)]\n    pub lamp: String,",
            )],
            "#[id«(lamp)»]",
            "without arguments",
        ),
        mistake(
            "command-id-with-a-value",
            &[(
                "    #[id]\n    pub lamp: String,",
                "    #[id = 1]\n    pub lamp: String,",
            )],
            "#[id «= 1»]",
            "without arguments",
        ),
        mistake(
            "command-id-on-the-struct",
            &[
                (
                    TURN_OFF_ATTR,
                    "#[command(aggregate = Lamp)]\n#[id]\npub struct TurnOff",
                ),
                (
                    "pub struct TurnOff(#[id] pub String);",
                    "pub struct TurnOff(pub String);",
                ),
            ],
            "«#[id]»\npub struct TurnOff",
            "on a field",
        ),
        mistake(
            "command-id-twice-on-one-field",
            &[(
                "    #[id]\n    pub lamp: String,",
                "    #[id]\n    #[id]\n    pub lamp: String,",
            )],
            "#[id]\n    «#[id]»\n    pub lamp",
            "second",
        ),
        mistake(
            "command-id-without-display",
            &[
                (
                    "    #[id]\n    pub lamp: String,",
                    "    #[id]\n    pub lamp: Vec<u8>,",
                ),
                (
                    "(e.aggregate_id().to_owned(), true)",
                    "(e.aggregate_id().to_owned(), true)",
                ),
            ],
            "#[id]\n    pub lamp: «Vec<u8>»,",
            "Vec<u8>",
        ),
        append(
            "command-unit-struct",
            "#[derive(Command, Deserialize)]\n#[command(aggregate = Lamp)]\npub struct Reset;",
            error("pub struct «Reset»;", "no fields"),
        ),
        append(
            "command-enum",
            "#[derive(Command, Deserialize)]\n#[command(aggregate = Lamp)]\npub enum Reset {\n    All,\n}",
            error("pub «enum» Reset", "not enums"),
        ),
        append(
            "command-generic",
            "#[derive(Command, Deserialize)]\n#[command(aggregate = Lamp)]\npub struct Dim<T> {\n    #[id]\n    pub lamp: T,\n}",
            error("pub struct Dim«<T>»", "does not support generic parameters"),
        ),
        mistake(
            "command-name-empty",
            &[(TURN_ON_ATTR, "#[command(aggregate = Lamp, name = \"\")]")],
            "name = «\"\"»)]",
            "must not be empty",
        ),
        mistake(
            "command-missing-deserialize",
            &[(
                "#[derive(Command, Deserialize)]\n#[command(aggregate = Lamp)]\npub struct TurnOff",
                "#[derive(Command)]\n#[command(aggregate = Lamp)]\npub struct TurnOff",
            )],
            "pub struct «TurnOff»(",
            "Deserialize",
        ),
        mistake(
            "command-key-unknown",
            &[(
                TURN_OFF_ATTR,
                "#[command(aggregate = Lamp, retries = 3)]\npub struct TurnOff",
            )],
            "«retries» = 3",
            "unknown key `retries`",
        ),
        legal(
            "command-raw-identifier-field",
            &[
                (
                    "    #[id]\n    pub lamp: String,",
                    "    #[id]\n    pub r#type: String,",
                ),
                ("self.on.get(&q.lamp)", "self.on.get(&q.lamp)"),
            ],
        ),
        legal(
            "command-id-by-reference-type",
            &[(
                "    #[id]\n    pub lamp: String,",
                "    #[id]\n    pub lamp: Box<str>,",
            )],
        ),
        legal(
            "command-attribute-split-in-two",
            &[(
                TURN_ON_ATTR,
                "#[command(aggregate = Lamp)]\n#[command(name = \"lamp.turn_on\")]",
            )],
        ),
        legal(
            "command-cfg-attr",
            &[(
                TURN_ON_ATTR,
                "#[cfg_attr(all(), command(aggregate = Lamp, name = \"lamp.turn_on\"))]",
            )],
        ),
    ]
}

fn projection_variants() -> Vec<Variant> {
    vec![
        mistake(
            "projection-events-keyword",
            &[(
                PROJECTION_ATTR,
                "#[projection(name = \"lamp_status\", events(SwitchedOn, SwitchedOff, crate))]",
            )],
            "SwitchedOff, «crate»))]",
            "expected an event type",
        ),
        mistake(
            "projection-events-literal",
            &[(
                PROJECTION_ATTR,
                "#[projection(name = \"lamp_status\", events(SwitchedOn, SwitchedOff, 'x'))]",
            )],
            "SwitchedOff, «'x'»))]",
            "expected an event type",
        ),
        mistake(
            "projection-events-missing-comma",
            &[(
                PROJECTION_ATTR,
                "#[projection(name = \"lamp_status\", events(SwitchedOn SwitchedOff))]",
            )],
            "events(SwitchedOn «SwitchedOff»))]",
            "expected `,`",
        ),
        mistake(
            "projection-events-empty",
            &[
                (
                    PROJECTION_ATTR,
                    "#[projection(name = \"lamp_status\", events())]",
                ),
                (
                    "impl Project<SwitchedOn> for LampStatus",
                    "impl Project<SwitchedOn> for LampStatus",
                ),
            ],
            "«events»())]",
            "at least one event",
        ),
        mistake(
            "projection-missing-events",
            &[(PROJECTION_ATTR, "#[projection(name = \"lamp_status\")]")],
            "#[«projection»(name = \"lamp_status\")]",
            "missing `events(..)`",
        ),
        mistake(
            "projection-events-listed-twice",
            &[(
                PROJECTION_ATTR,
                "#[projection(name = \"lamp_status\", events(SwitchedOn, SwitchedOff, SwitchedOn))]",
            )],
            "SwitchedOff, «SwitchedOn»))]",
            "listed twice",
        ),
        mistake(
            "projection-missing-project",
            &[(
                "impl Project<SwitchedOff> for LampStatus {\n    fn project(&mut self, e: &Envelope<SwitchedOff>) {\n        self.on.insert(e.aggregate_id().to_owned(), false);\n    }\n}\n",
                "",
            )],
            "events(SwitchedOn, «SwitchedOff»))]",
            "does not project it",
        ),
        mistake(
            "projection-event-not-an-event",
            &[(
                PROJECTION_ATTR,
                "#[projection(name = \"lamp_status\", events(SwitchedOn, SwitchedOff, LampError))]",
            )],
            "SwitchedOff, «LampError»))]",
            "`LampError` is not an event",
        ),
        mistake(
            "projection-name-with-space",
            &[(
                PROJECTION_ATTR,
                "#[projection(name = \"lamp status\", events(SwitchedOn, SwitchedOff))]",
            )],
            "name = «\"lamp status\"»",
            "found a space",
        ),
        mistake(
            "projection-key-typo",
            &[(
                PROJECTION_ATTR,
                "#[projection(nam = \"lamp_status\", events(SwitchedOn, SwitchedOff))]",
            )],
            "#[projection(«nam» =",
            "did you mean `name`",
        ),
        mistake(
            "projection-events-wrong-case",
            &[(
                PROJECTION_ATTR,
                "#[projection(name = \"lamp_status\", EVENTS(SwitchedOn, SwitchedOff))]",
            )],
            "«EVENTS»(SwitchedOn",
            "did you mean `events`",
        ),
        mistake(
            "projection-missing-attribute",
            &[(PROJECTION_ATTR, "")],
            "pub struct «LampStatus» {",
            "missing `#[projection(",
        ),
        mistake(
            "projection-document-with-arguments",
            &[(
                "pub struct LampStatus {\n    on:",
                "pub struct LampStatus {\n    #[document(lamps)]\n    on:",
            )],
            "#[document«(lamps)»]",
            "takes no arguments",
        ),
        mistake(
            "projection-document-beside-plain-field",
            &[(
                "pub struct LampStatus {\n    on: std::collections::BTreeMap<String, bool>,",
                "pub struct LampStatus {\n    on: std::collections::BTreeMap<String, bool>,\n    #[document]\n    lamps: Documents<bool>,",
            )],
            "«on: std::collections::BTreeMap<String, bool>»,\n    #[document]",
            "is not a `#[document]` field",
        ),
        mistake(
            "projection-document-not-a-collection",
            &[(
                "pub struct LampStatus {\n    on:",
                "pub struct LampStatus {\n    #[document]\n    on:",
            )],
            "    on: «std::collections::BTreeMap<String, bool>»,",
            "must be a documents collection",
        ),
        append(
            "projection-generic",
            "#[derive(Projection, Default)]\n#[projection(events(SwitchedOn))]\npub struct Seen<T> {\n    last: T,\n}",
            error(
                "pub struct Seen«<T>»",
                "does not support generic parameters",
            ),
        ),
        append(
            "projection-tuple-struct",
            "#[derive(Projection, Default)]\n#[projection(events(SwitchedOn))]\npub struct Seen(u64);\n\nimpl Project<SwitchedOn> for Seen {\n    fn project(&mut self, _: &Envelope<SwitchedOn>) {\n        self.0 += 1;\n    }\n}",
            Expect::Legal,
        ),
        append(
            "projection-unit-struct",
            "#[derive(Projection, Default)]\n#[projection(events(SwitchedOn))]\npub struct Seen;\n\nimpl Project<SwitchedOn> for Seen {\n    fn project(&mut self, _: &Envelope<SwitchedOn>) {}\n}",
            Expect::Legal,
        ),
        legal(
            "projection-cfg-attr",
            &[(
                PROJECTION_ATTR,
                "#[cfg_attr(all(), projection(name = \"lamp_status\", events(SwitchedOn, SwitchedOff)))]",
            )],
        ),
    ]
}

fn query_variants() -> Vec<Variant> {
    vec![
        mistake(
            "query-projection-an-aggregate",
            &[(
                QUERY_ATTR,
                "#[query(projection = Lamp, output = Option<bool>, name = \"lamp.is_on\")]",
            )],
            "#[query(projection = «Lamp»,",
            "`Lamp` is not a projection",
        ),
        mistake(
            "query-projection-self",
            &[(
                QUERY_ATTR,
                "#[query(projection = Self, output = Option<bool>, name = \"lamp.is_on\")]",
            )],
            "#[query(projection = «Self»,",
            "`Self`",
        ),
        mistake(
            "query-projection-reference",
            &[(
                QUERY_ATTR,
                "#[query(projection = &LampStatus, output = Option<bool>, name = \"lamp.is_on\")]",
            )],
            "#[query(projection = «&LampStatus»,",
            "expected a projection type",
        ),
        mistake(
            "query-missing-projection",
            &[(
                QUERY_ATTR,
                "#[query(output = Option<bool>, name = \"lamp.is_on\")]",
            )],
            "#[«query»(output",
            "missing `projection = <type>`",
        ),
        mistake(
            "query-missing-output",
            &[(
                QUERY_ATTR,
                "#[query(projection = LampStatus, name = \"lamp.is_on\")]",
            )],
            "#[«query»(projection = LampStatus, name",
            "missing `output = <type>`",
        ),
        mistake(
            "query-output-a-string",
            &[(
                QUERY_ATTR,
                "#[query(projection = LampStatus, output = \"Option<bool>\", name = \"lamp.is_on\")]",
            )],
            "output = «\"Option<bool>\"»",
            "without quotes",
        ),
        mistake(
            "query-output-impl-trait",
            &[(
                QUERY_ATTR,
                "#[query(projection = LampStatus, output = impl Copy, name = \"lamp.is_on\")]",
            )],
            "output = «impl Copy»",
            "expected `output = <type>`",
        ),
        mistake(
            "query-output-key-typo",
            &[(
                QUERY_ATTR,
                "#[query(projection = LampStatus, ouput = Option<bool>, name = \"lamp.is_on\")]",
            )],
            "«ouput» = Option<bool>",
            "did you mean `output`",
        ),
        mistake(
            "query-missing-answer",
            &[(
                "impl Answer<IsOn> for LampStatus {\n    fn answer(&self, q: &IsOn) -> Option<bool> {\n        self.on.get(&q.lamp).copied()\n    }\n}\n",
                "",
            )],
            "#[query(projection = «LampStatus»,",
            "does not answer query `IsOn`",
        ),
        mistake(
            "query-missing-attribute",
            &[(QUERY_ATTR, "")],
            "pub struct «IsOn» {",
            "missing `#[query(",
        ),
        mistake(
            "query-name-value-attribute",
            &[(
                QUERY_ATTR,
                "#[query = \"lamp.is_on\"]\n#[query(projection = LampStatus, output = Option<bool>)]",
            )],
            "#[query «= \"lamp.is_on\"»]",
            "not `#[query = ..]`",
        ),
        mistake(
            "query-enum",
            &[
                (
                    "pub struct IsOn {\n    pub lamp: String,\n}",
                    "pub enum IsOn {\n    Lamp(String),\n}",
                ),
                (
                    "self.on.get(&q.lamp).copied()",
                    "let IsOn::Lamp(lamp) = q;\n        self.on.get(lamp).copied()",
                ),
            ],
            "pub «enum» IsOn",
            "not enums",
        ),
        legal(
            "query-output-static-reference",
            &[
                (
                    QUERY_ATTR,
                    "#[query(projection = LampStatus, output = &'static str, name = \"lamp.is_on\")]",
                ),
                (
                    "fn answer(&self, q: &IsOn) -> Option<bool> {\n        self.on.get(&q.lamp).copied()",
                    "fn answer(&self, q: &IsOn) -> &'static str {\n        if self.on.contains_key(&q.lamp) { \"known\" } else { \"unknown\" }",
                ),
            ],
        ),
        append(
            "query-unit-struct",
            "#[derive(Query, Deserialize)]\n#[query(projection = LampStatus, output = usize)]\npub struct CountLamps;\n\nimpl Answer<CountLamps> for LampStatus {\n    fn answer(&self, _: &CountLamps) -> usize {\n        self.on.len()\n    }\n}",
            Expect::Legal,
        ),
        append(
            "query-tuple-struct",
            "#[derive(Query, Deserialize)]\n#[query(projection = LampStatus, output = bool)]\npub struct Known(pub String);\n\nimpl Answer<Known> for LampStatus {\n    fn answer(&self, q: &Known) -> bool {\n        self.on.contains_key(&q.0)\n    }\n}",
            Expect::Legal,
        ),
        legal(
            "query-output-boxed-trait-object",
            &[
                (
                    QUERY_ATTR,
                    "#[query(projection = LampStatus, output = Vec<Box<str>>, name = \"lamp.is_on\")]",
                ),
                (
                    "fn answer(&self, q: &IsOn) -> Option<bool> {\n        self.on.get(&q.lamp).copied()",
                    "fn answer(&self, _: &IsOn) -> Vec<Box<str>> {\n        self.on.keys().map(|k| k.as_str().into()).collect()",
                ),
            ],
        ),
    ]
}

fn placement_variants() -> Vec<Variant> {
    vec![
        mistake(
            "aggregate-attribute-on-a-field",
            &[(
                "pub struct Counter {\n    ticks: u64,",
                "pub struct Counter {\n    #[aggregate(name = \"ticks\")]\n    ticks: u64,",
            )],
            "«#[aggregate(name = \"ticks\")]»",
            "on the struct",
        ),
        mistake(
            "event-attribute-on-a-field",
            &[(
                "pub struct SwitchedOn {\n    pub brightness: u8,",
                "pub struct SwitchedOn {\n    #[event(version = 2)]\n    pub brightness: u8,",
            )],
            "«#[event(version = 2)]»",
            "on the struct",
        ),
        mistake(
            "command-attribute-on-a-field",
            &[(
                "    #[id]\n    pub lamp: String,",
                "    #[id]\n    #[command(name = \"lamp\")]\n    pub lamp: String,",
            )],
            "«#[command(name = \"lamp\")]»",
            "on the struct",
        ),
        mistake(
            "query-attribute-on-a-field",
            &[(
                "pub struct IsOn {\n    pub lamp: String,",
                "pub struct IsOn {\n    #[query(name = \"lamp\")]\n    pub lamp: String,",
            )],
            "«#[query(name = \"lamp\")]»",
            "on the struct",
        ),
        mistake(
            "projection-attribute-on-a-field",
            &[(
                "pub struct LampStatus {\n    on:",
                "pub struct LampStatus {\n    #[projection(name = \"on\")]\n    on:",
            )],
            "«#[projection(name = \"on\")]»",
            "on the struct",
        ),
        mistake(
            "document-on-the-struct",
            &[(
                PROJECTION_ATTR,
                "#[document]\n#[projection(name = \"lamp_status\", events(SwitchedOn, SwitchedOff))]",
            )],
            "«#[document]»\n#[projection",
            "on a field",
        ),
        mistake(
            "query-attribute-on-a-command",
            &[(
                TURN_OFF_ATTR,
                "#[query(aggregate = Lamp)]\npub struct TurnOff",
            )],
            "#[«query»(aggregate = Lamp)]",
            "#[command(..)]",
        ),
        mistake(
            "command-attribute-on-an-event",
            &[(
                EVENT_ATTR,
                "#[command(name = \"lamp.switched_on\", version = 1)]",
            )],
            "#[«command»(name = \"lamp.switched_on\"",
            "#[event(..)]",
        ),
    ]
}

/// The five derives on items a `macro_rules!` macro produces, with the
/// listed types passed as `ty`, `path` and `ident` fragments.
fn macro_variants() -> Vec<Variant> {
    let domain = |fragment: &str| {
        format!(
            r#"macro_rules! bulb_domain {{
    ($agg:ident, $on:{fragment}, $cmd:{fragment}, $view:ident, $ask:ident) => {{
        #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
        #[event(name = "bulb.lit")]
        pub struct Lit;

        #[derive(Aggregate, Default)]
        #[aggregate(events($on), commands($cmd), error = LampError)]
        pub struct $agg {{
            lit: bool,
        }}

        impl Apply<$on> for $agg {{
            fn apply(&mut self, _: &$on) {{
                self.lit = true;
            }}
        }}

        #[derive(Command, Deserialize)]
        #[command(aggregate = $agg)]
        pub struct Light {{
            #[id]
            pub bulb: u32,
        }}

        impl Handle<$cmd> for $agg {{
            fn handle(&self, _: &$cmd) -> Result<Events<Self>, LampError> {{
                Ok(events![Lit])
            }}
        }}

        #[derive(Projection, Default)]
        #[projection(events($on))]
        pub struct $view {{
            lit: u64,
        }}

        impl Project<$on> for $view {{
            fn project(&mut self, _: &Envelope<$on>) {{
                self.lit += 1;
            }}
        }}

        #[derive(Query, Deserialize)]
        #[query(projection = $view, output = u64)]
        pub struct $ask;

        impl Answer<$ask> for $view {{
            fn answer(&self, _: &$ask) -> u64 {{
                self.lit
            }}
        }}
    }};
}}

bulb_domain!(Bulb, Lit, Light, LitBulbs, HowManyLit);"#
        )
    };
    vec![
        append("macro-rules-ty-fragments", &domain("ty"), Expect::Legal),
        append("macro-rules-path-fragments", &domain("path"), Expect::Legal),
        append(
            "macro-rules-ident-fragments",
            &domain("ident"),
            Expect::Legal,
        ),
        append(
            "macro-rules-whole-domain-in-a-function",
            &format!("fn define() {{\n{}\n}}", domain("ident")),
            Expect::Legal,
        ),
        append(
            "macro-rules-mistake-in-a-fragment",
            r#"macro_rules! counter {
    ($name:ident, $ev:ty) => {
        #[derive(Aggregate, Default)]
        #[aggregate(events($ev), error = LampError)]
        pub struct $name;

        impl Apply<Ticked> for $name {
            fn apply(&mut self, _: &Ticked) {}
        }
    };
}

counter!(Ticker, Tricked);"#,
            error("counter!(Ticker, «Tricked»);", "cannot find type `Tricked`"),
        ),
    ]
}

/// Old names, upcasters and the skip policy (issue 11).
fn evolution_variants() -> Vec<Variant> {
    const UPCASTER: &str =
        "fn up(v: cqrs_core::upcast::Value) -> cqrs_core::upcast::Value {\n    v\n}";
    let with_upcaster = |name: &'static str, attr: &'static str, expect: Expect| Variant {
        name,
        edits: vec![
            (EVENT_ATTR, attr.to_owned()),
            ("fn main() {}", format!("{UPCASTER}\nfn main() {{}}")),
        ],
        expect,
    };
    vec![
        legal(
            "event-aliases",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", aliases(\"lamp.on\", \"light.on\"))]",
            )],
        ),
        mistake(
            "event-alias-is-the-name",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", aliases(\"lamp.on\", \"lamp.switched_on\"))]",
            )],
            "\"lamp.on\", «\"lamp.switched_on\"»))]",
            "the event's own name",
        ),
        mistake(
            "event-alias-twice",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", aliases(\"lamp.on\", \"lamp.on\"))]",
            )],
            "\"lamp.on\", «\"lamp.on\"»))]",
            "listed twice",
        ),
        mistake(
            "event-alias-empty",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", aliases(\"\"))]",
            )],
            "aliases(«\"\"»))]",
            "an alias must not be empty",
        ),
        mistake(
            "event-aliases-a-value",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", aliases = \"lamp.on\")]",
            )],
            "aliases «= \"lamp.on\"»",
            "expected `aliases(",
        ),
        with_upcaster(
            "event-upcast-json",
            "#[event(name = \"lamp.switched_on\", version = 3, upcast(from = 1, with = up), upcast(from = 2, with = up))]",
            Expect::Legal,
        ),
        append(
            "event-upcast-typed-chain",
            &format!(
                "#[derive(Deserialize)]\npub struct DimmedV1 {{ pub on: bool }}\n\
                 #[derive(Deserialize)]\npub struct DimmedV2 {{ pub level: u8 }}\n\
                 {EVENT_DERIVES}\n#[event(version = 3, upcast(from = 1, shape = DimmedV1), upcast(from = 2, shape = DimmedV2))]\n\
                 pub struct Dimmed {{ pub level: u8 }}\n\
                 impl Upcast<DimmedV1> for DimmedV2 {{ fn upcast(v1: DimmedV1) -> Self {{ DimmedV2 {{ level: if v1.on {{ 100 }} else {{ 0 }} }} }} }}\n\
                 impl Upcast<DimmedV2> for Dimmed {{ fn upcast(v2: DimmedV2) -> Self {{ Dimmed {{ level: v2.level }} }} }}"
            ),
            Expect::Legal,
        ),
        with_upcaster(
            "event-upcast-from-not-older",
            "#[event(name = \"lamp.switched_on\", version = 2, upcast(from = 2, with = up))]",
            error("upcast(from = «2»", "not older than the event's version 2"),
        ),
        with_upcaster(
            "event-upcast-without-version",
            "#[event(name = \"lamp.switched_on\", upcast(from = 1, with = up))]",
            error("upcast(from = «1»", "not older than the event's version 1"),
        ),
        with_upcaster(
            "event-upcast-twice-from-one-version",
            "#[event(name = \"lamp.switched_on\", version = 2, upcast(from = 1, with = up), upcast(from = 1, with = up))]",
            error("up), upcast(from = «1»", "a second upcaster from version 1"),
        ),
        with_upcaster(
            "event-upcast-gap",
            "#[event(name = \"lamp.switched_on\", version = 3, upcast(from = 1, with = up))]",
            error("version = «3»", "no upcaster from version 2"),
        ),
        with_upcaster(
            "event-upcast-without-from",
            "#[event(name = \"lamp.switched_on\", version = 2, upcast(with = up))]",
            error("«upcast»(with", "missing `from = <version>`"),
        ),
        mistake(
            "event-upcast-without-with",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = 2, upcast(from = 1))]",
            )],
            "«upcast»(from",
            "missing `with = <function>` or `shape = <type>`",
        ),
        with_upcaster(
            "event-upcast-from-a-string",
            "#[event(name = \"lamp.switched_on\", version = 2, upcast(from = \"1\", with = up))]",
            error("upcast(from = «\"1\"»", "expected `from = <version>`"),
        ),
        with_upcaster(
            "event-upcast-key-typo",
            "#[event(name = \"lamp.switched_on\", version = 2, upcast(form = 1, with = up))]",
            error("upcast(«form»", "did you mean `from`"),
        ),
        mistake(
            "event-upcast-unknown-function",
            &[(
                EVENT_ATTR,
                "#[event(name = \"lamp.switched_on\", version = 2, upcast(from = 1, with = nowhere))]",
            )],
            "with = «nowhere»",
            "cannot find value `nowhere`",
        ),
        append(
            "event-upcast-function-of-another-signature",
            &format!(
                "{EVENT_DERIVES}\n#[event(version = 2, upcast(from = 1, with = count))]\npub struct Dimmed;\n\
                 fn count(_: cqrs_core::upcast::Value) -> usize {{ 1 }}"
            ),
            error("with = «count»", "an upcaster returns `serde_json::Value`"),
        ),
        append(
            "event-upcast-shape-without-its-impl",
            &format!(
                "#[derive(Deserialize)]\npub struct DimmedV1 {{ pub on: bool }}\n\
                 {EVENT_DERIVES}\n#[event(version = 2, upcast(from = 1, shape = DimmedV1))]\npub struct Dimmed;"
            ),
            error(
                "shape = «DimmedV1»",
                "cannot be made from the older shape `DimmedV1`",
            ),
        ),
        append(
            "event-upcast-shape-unknown",
            &format!(
                "{EVENT_DERIVES}\n#[event(version = 2, upcast(from = 1, shape = DimmedV1))]\npub struct Dimmed;"
            ),
            error("shape = «DimmedV1»", "cannot find type `DimmedV1`"),
        ),
        legal(
            "projection-skips-unknown-events",
            &[(
                PROJECTION_ATTR,
                "#[projection(name = \"lamp_status\", events(SwitchedOn, SwitchedOff), unknown_events = skip)]",
            )],
        ),
        mistake(
            "projection-unknown-events-policy",
            &[(
                PROJECTION_ATTR,
                "#[projection(name = \"lamp_status\", events(SwitchedOn, SwitchedOff), unknown_events = drop)]",
            )],
            "unknown_events = «drop»",
            "expected `unknown_events = skip`",
        ),
        mistake(
            "projection-unknown-events-a-string",
            &[(
                PROJECTION_ATTR,
                "#[projection(name = \"lamp_status\", events(SwitchedOn, SwitchedOff), unknown_events = \"skip\")]",
            )],
            "unknown_events = «\"skip\"»",
            "without quotes",
        ),
    ]
}
