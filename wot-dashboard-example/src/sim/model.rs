//! The simulated devices, without any I/O.
//!
//! Each device is a small state machine advanced by [`World::step`] once per tick (500 ms by
//! default). Values move smoothly: each one is pulled a little towards where the device's
//! state puts it (first-order lag) with a little noise, so the fridge warms over minutes when
//! its door stays open, and CO2 builds up while the room is busy and fades when it empties.
//! Normal life (short door openings, people coming and going, passing clouds) stays inside
//! the bundled alert rules (`rules/default.yaml`).
//!
//! Now and then one device has an *incident* that trips a rule and then recovers: the pump's
//! outlet blocks, the cold-room door is left open, the meeting room's ventilation fails, the
//! grid goes down and the house runs on the inverter's battery. Each device waits
//! [`INCIDENT_GAP`] ticks (10 to 30 minutes at 500 ms) between its incidents; the pump's
//! first comes within [`FIRST_INCIDENT`] ticks (30 to 80 s), so a new user sees an alert fire
//! and resolve in the first two minutes. Everything is drawn from one seeded RNG: the same
//! seed gives the same run.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

/// What a simulated device says happened during one tick.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Emission {
    /// A property has a new value.
    Property {
        /// Property name.
        name: &'static str,
        /// New value.
        value: Value,
    },
    /// An event fired.
    Event {
        /// Event name.
        name: &'static str,
        /// Event data.
        data: Value,
    },
}

/// The JSON type of a property, as written into the TD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    Number,
    Integer,
    Boolean,
    String,
}

/// The description of one property, from which the TD is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PropertySpec {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) kind: ValueType,
    pub(crate) unit: Option<&'static str>,
    pub(crate) minimum: Option<f64>,
    pub(crate) maximum: Option<f64>,
    pub(crate) writable: bool,
}

/// The description of one event; its data is always a JSON object with these number or string
/// fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventSpec {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) fields: &'static [(&'static str, ValueType)],
}

/// The description of one action (no input; output is a JSON object).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActionSpec {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
}

/// Everything needed to describe one simulated Thing in a TD.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThingSpec {
    /// Path segment under `/things/` and the last part of the Thing id.
    pub(crate) slug: &'static str,
    pub(crate) title: &'static str,
    pub(crate) description: &'static str,
    pub(crate) properties: &'static [PropertySpec],
    pub(crate) events: &'static [EventSpec],
    pub(crate) actions: &'static [ActionSpec],
}

impl ThingSpec {
    /// The property named `name`, if the Thing has one.
    pub(crate) fn property(&self, name: &str) -> Option<&PropertySpec> {
        self.properties.iter().find(|p| p.name == name)
    }
}

const fn number(
    name: &'static str,
    title: &'static str,
    unit: &'static str,
    range: Option<(f64, f64)>,
) -> PropertySpec {
    let (minimum, maximum) = match range {
        Some((lo, hi)) => (Some(lo), Some(hi)),
        None => (None, None),
    };
    PropertySpec {
        name,
        title,
        kind: ValueType::Number,
        unit: Some(unit),
        minimum,
        maximum,
        writable: false,
    }
}

const fn plain(name: &'static str, title: &'static str, kind: ValueType) -> PropertySpec {
    PropertySpec {
        name,
        title,
        kind,
        unit: None,
        minimum: None,
        maximum: None,
        writable: false,
    }
}

/// The four simulated Things, in directory order.
pub(crate) const THINGS: [ThingSpec; 4] = [
    ThingSpec {
        slug: "fridge-1",
        title: "Cold-room fridge",
        description: "A walk-in cold room; its temperature climbs while the door stays open.",
        properties: &[
            number("temperature", "Temperature", "°C", None),
            PropertySpec {
                writable: true,
                ..number(
                    "targetTemperature",
                    "Target temperature",
                    "°C",
                    Some((0.0, 8.0)),
                )
            },
            plain("doorOpen", "Door open", ValueType::Boolean),
        ],
        events: &[
            EventSpec {
                name: "doorOpened",
                title: "Door opened",
                fields: &[("temperature", ValueType::Number)],
            },
            EventSpec {
                name: "doorClosed",
                title: "Door closed",
                fields: &[("openTicks", ValueType::Integer)],
            },
        ],
        actions: &[],
    },
    ThingSpec {
        slug: "pump-1",
        title: "Water pump",
        description: "A booster pump; now and then its outlet blocks, pressure builds and it reports a fault.",
        properties: &[
            number("pressure", "Outlet pressure", "bar", Some((0.0, 10.0))),
            number("flow", "Flow", "L/min", None),
            plain("running", "Running", ValueType::Boolean),
        ],
        events: &[EventSpec {
            name: "fault",
            title: "Fault",
            fields: &[("code", ValueType::String), ("pressure", ValueType::Number)],
        }],
        actions: &[
            ActionSpec {
                name: "stop",
                title: "Stop the pump",
            },
            ActionSpec {
                name: "start",
                title: "Start the pump",
            },
        ],
    },
    ThingSpec {
        slug: "air-1",
        title: "Air-quality sensor",
        description: "A meeting-room sensor; CO2 builds up while the room is busy.",
        properties: &[
            number("co2", "CO2", "ppm", None),
            number("pm25", "PM2.5", "µg/m³", None),
            plain("level", "Air quality", ValueType::String),
        ],
        events: &[EventSpec {
            name: "levelChanged",
            title: "Air quality level changed",
            fields: &[("level", ValueType::String), ("co2", ValueType::Number)],
        }],
        actions: &[],
    },
    ThingSpec {
        slug: "solar-1",
        title: "Solar inverter",
        description: "A rooftop inverter whose battery carries the house through clouds and grid outages.",
        properties: &[
            number("power", "AC power", "W", Some((0.0, 5000.0))),
            number("batteryLevel", "Battery level", "%", Some((0.0, 100.0))),
            plain("mode", "Battery mode", ValueType::String),
        ],
        events: &[
            EventSpec {
                name: "batteryLow",
                title: "Battery low",
                fields: &[("level", ValueType::Number)],
            },
            EventSpec {
                name: "modeChanged",
                title: "Battery mode changed",
                fields: &[("mode", ValueType::String), ("level", ValueType::Number)],
            },
        ],
        actions: &[],
    },
];

/// The kind of simulated Thing `index`: `THINGS[index % 4]`, so a fleet cycles through the
/// fridge, the pump, the air sensor and the inverter.
pub(crate) fn spec(index: usize) -> &'static ThingSpec {
    &THINGS[index % THINGS.len()]
}

/// The path segment of simulated Thing `index`: its kind's slug with the kind's name
/// numbered from 1 (`fridge-1`, `pump-1`, `air-1`, `solar-1`, `fridge-2`, ...), so the first
/// four keep the names they have without a fleet.
pub(crate) fn slug(index: usize) -> String {
    let kind = spec(index).slug;
    let name = kind.strip_suffix("-1").unwrap_or(kind);
    format!("{name}-{}", index / THINGS.len() + 1)
}

/// The index of the Thing whose [`slug`] is `slug`, among `count` Things.
pub(crate) fn index_of(slug: &str, count: usize) -> Option<usize> {
    let (name, number) = slug.rsplit_once('-')?;
    // Canonical numbers only (no `+`, no leading zeros), so one Thing has one slug.
    if number.starts_with(['0', '+']) {
        return None;
    }
    let number: usize = number.parse().ok()?;
    let kind = THINGS
        .iter()
        .position(|t| t.slug.strip_suffix("-1") == Some(name))?;
    let index = number
        .checked_sub(1)?
        .checked_mul(THINGS.len())?
        .checked_add(kind)?;
    (index < count).then_some(index)
}

/// The title of simulated Thing `index`: its kind's title, numbered after the first four
/// (`Water pump 2`).
pub(crate) fn title(index: usize) -> String {
    match index / THINGS.len() {
        0 => spec(index).title.to_owned(),
        group => format!("{} {}", spec(index).title, group + 1),
    }
}

/// Why a write or an invocation was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum DeviceError {
    /// No such affordance on this Thing.
    #[error("{0} not found")]
    NotFound(String),
    /// The property is read-only.
    #[error("property {0} is read-only")]
    ReadOnly(String),
    /// The value does not fit the property's schema.
    #[error("{0}")]
    BadValue(String),
}

/// Ticks between two incidents of one device.
pub(crate) const INCIDENT_GAP: std::ops::RangeInclusive<u32> = 1200..=3600;
/// Ticks before the pump's first incident.
pub(crate) const FIRST_INCIDENT: std::ops::RangeInclusive<u32> = 60..=160;

/// A value that follows a target with a lag, plus a little noise, within hard limits.
#[derive(Debug, Clone)]
struct Lag {
    value: f64,
    /// Share of the distance to the target covered per tick.
    rate: f64,
    /// Largest noise per tick, either way.
    noise: f64,
    lo: f64,
    hi: f64,
}

impl Lag {
    fn new(value: f64, rate: f64, noise: f64, lo: f64, hi: f64) -> Self {
        Lag {
            value,
            rate,
            noise,
            lo,
            hi,
        }
    }

    fn toward(&mut self, target: f64, rng: &mut StdRng) -> f64 {
        let noise = rng.random_range(-self.noise..=self.noise);
        self.value += (target - self.value) * self.rate + noise;
        self.value = self.value.clamp(self.lo, self.hi);
        self.value
    }
}

/// Rounds for display-friendly JSON (the wire carries what a real sensor would report): to
/// `decimals` places, and a whole number as a JSON integer (`1536`, not `1536.0`).
fn round(value: f64, decimals: i32) -> Value {
    let factor = 10f64.powi(decimals);
    let rounded = (value * factor).round() / factor;
    if decimals <= 0 {
        // In range for any simulated value (all are clamped to a few thousand at most).
        json!(rounded as i64)
    } else {
        json!(rounded)
    }
}

/// A device's life between states: waiting `wait` ticks, then in the state for `remaining`.
#[derive(Debug, Clone)]
struct Phase {
    wait: u32,
    remaining: u32,
}

impl Phase {
    fn new(wait: u32) -> Self {
        Phase { wait, remaining: 0 }
    }

    /// Advances one tick and returns whether the state holds during it. When a wait ends the
    /// state starts and lasts a number of ticks drawn from `length`; when it ends, the next
    /// wait is drawn from `gap`.
    fn advance(
        &mut self,
        rng: &mut StdRng,
        length: std::ops::RangeInclusive<u32>,
        gap: std::ops::RangeInclusive<u32>,
    ) -> bool {
        if self.remaining > 0 {
            self.remaining -= 1;
            if self.remaining == 0 {
                self.wait = rng.random_range(gap);
            }
            return self.remaining > 0;
        }
        if self.wait > 0 {
            self.wait -= 1;
            return false;
        }
        self.remaining = rng.random_range(length).max(1);
        true
    }

    /// Ends a running state now; the next wait is drawn from `gap`.
    fn end(&mut self, rng: &mut StdRng, gap: std::ops::RangeInclusive<u32>) {
        self.remaining = 0;
        self.wait = rng.random_range(gap);
    }
}

#[derive(Debug, Clone)]
struct Fridge {
    temperature: Lag,
    target: f64,
    /// Ticks the door has been open, while it is.
    door_open_for: Option<u32>,
    /// Ordinary openings: someone fetching something, a few seconds.
    visit: Phase,
    /// The incident: the door left open for a minute or two.
    left_open: Phase,
}

#[derive(Debug, Clone)]
struct Pump {
    pressure: Lag,
    flow: Lag,
    running: bool,
    /// The incident: a blocked outlet (a valve closing downstream).
    blockage: Phase,
    fault_reported: bool,
}

#[derive(Debug, Clone)]
struct Air {
    co2: Lag,
    pm25: Lag,
    level: &'static str,
    /// People in the room (alternating with an empty room).
    busy: Phase,
    /// The incident: the ventilation fails.
    ventilation_failed: Phase,
}

#[derive(Debug, Clone)]
struct Solar {
    power: Lag,
    battery: f64,
    mode: &'static str,
    /// Clouds passing.
    cloud: Phase,
    /// The incident: the grid is down, the house runs on the battery.
    outage: Phase,
    /// Ticks of the outage left once the battery is low.
    outage_tail: Option<u32>,
    low_reported: bool,
}

#[derive(Debug, Clone)]
enum Device {
    Fridge(Fridge),
    Pump(Pump),
    Air(Air),
    Solar(Solar),
}

/// The state of all simulated Things.
#[derive(Debug)]
pub(crate) struct World {
    rng: StdRng,
    devices: Vec<Device>,
}

/// The air quality level of a CO2 reading; `current` is kept within 15 ppm of a boundary so
/// that noise around it does not flip the level back and forth.
fn air_level(co2: f64, current: &'static str) -> &'static str {
    let level = |co2: f64| {
        if co2 < 800.0 {
            "good"
        } else if co2 < 1200.0 {
            "moderate"
        } else {
            "poor"
        }
    };
    let next = level(co2);
    if next != current && level(co2 - 15.0) == level(co2 + 15.0) {
        next
    } else {
        current
    }
}

impl World {
    /// A world of the four Things of [`THINGS`] in their initial state; `seed` fixes every
    /// later step.
    #[cfg(test)]
    pub(crate) fn new(seed: u64) -> Self {
        World::fleet(seed, THINGS.len())
    }

    /// A world of `count` Things: Thing `i` is a device of the kind `THINGS[i % 4]` (see
    /// [`spec`]). The first four start exactly as [`World::new`]'s; the others draw their
    /// first incidents from the same seeded RNG afterwards, so the same seed and count give
    /// the same run.
    pub(crate) fn fleet(seed: u64, count: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let pump_first = rng.random_range(FIRST_INCIDENT);
        let later = |rng: &mut StdRng| rng.random_range(400..=*INCIDENT_GAP.end());
        let mut devices = vec![
            Device::Fridge(Fridge {
                temperature: Lag::new(3.5, 0.012, 0.015, -10.0, 30.0),
                target: 3.5,
                door_open_for: None,
                visit: Phase::new(rng.random_range(20..=80)),
                left_open: Phase::new(later(&mut rng)),
            }),
            Device::Pump(Pump {
                pressure: Lag::new(4.2, 0.1, 0.04, 0.0, 10.0),
                flow: Lag::new(38.0, 0.1, 0.4, 0.0, 80.0),
                running: true,
                blockage: Phase::new(pump_first),
                fault_reported: false,
            }),
            Device::Air(Air {
                co2: Lag::new(650.0, 0.008, 2.0, 400.0, 5000.0),
                pm25: Lag::new(9.0, 0.05, 0.3, 0.0, 500.0),
                level: "good",
                // The room fills up at once: its CO2 passes 800 ppm within a minute or so.
                busy: Phase::new(0),
                ventilation_failed: Phase::new(later(&mut rng)),
            }),
            Device::Solar(Solar {
                power: Lag::new(3100.0, 0.15, 40.0, 0.0, 5000.0),
                battery: 55.0,
                mode: "charging",
                cloud: Phase::new(rng.random_range(60..=240)),
                outage: Phase::new(later(&mut rng)),
                outage_tail: None,
                low_reported: false,
            }),
        ];
        devices.truncate(count);
        devices.reserve(count.saturating_sub(devices.len()));
        for index in devices.len()..count {
            // Copies of the first four, each with incidents of its own.
            let mut device = devices[index % THINGS.len()].clone();
            match &mut device {
                Device::Fridge(f) => {
                    f.visit = Phase::new(rng.random_range(20..=80));
                    f.left_open = Phase::new(later(&mut rng));
                }
                Device::Pump(p) => p.blockage = Phase::new(later(&mut rng)),
                Device::Air(a) => {
                    a.busy = Phase::new(rng.random_range(0..=40));
                    a.ventilation_failed = Phase::new(later(&mut rng));
                }
                Device::Solar(s) => {
                    s.cloud = Phase::new(rng.random_range(60..=240));
                    s.outage = Phase::new(later(&mut rng));
                }
            }
            devices.push(device);
        }
        World { rng, devices }
    }

    /// How many Things this world has.
    pub(crate) fn len(&self) -> usize {
        self.devices.len()
    }

    /// Advances every device by one tick and returns, per Thing (index into [`THINGS`]), what
    /// it emits.
    pub(crate) fn step(&mut self) -> Vec<(usize, Emission)> {
        let mut out = Vec::new();
        for (index, device) in self.devices.iter_mut().enumerate() {
            let mut emit = |e| out.push((index, e));
            match device {
                Device::Fridge(f) => step_fridge(f, &mut self.rng, &mut emit),
                Device::Pump(p) => step_pump(p, &mut self.rng, &mut emit),
                Device::Air(a) => step_air(a, &mut self.rng, &mut emit),
                Device::Solar(s) => step_solar(s, &mut self.rng, &mut emit),
            }
        }
        out
    }

    /// The current values of every property of Thing `index`.
    pub(crate) fn properties(&self, index: usize) -> Vec<(&'static str, Value)> {
        match self.devices.get(index) {
            Some(Device::Fridge(f)) => vec![
                ("temperature", round(f.temperature.value, 1)),
                ("targetTemperature", round(f.target, 1)),
                ("doorOpen", json!(f.door_open_for.is_some())),
            ],
            Some(Device::Pump(p)) => vec![
                ("pressure", round(p.pressure.value, 2)),
                ("flow", round(p.flow.value, 1)),
                ("running", json!(p.running)),
            ],
            Some(Device::Air(a)) => vec![
                ("co2", round(a.co2.value, 0)),
                ("pm25", round(a.pm25.value, 1)),
                ("level", json!(a.level)),
            ],
            Some(Device::Solar(s)) => vec![
                ("power", round(s.power.value, 0)),
                ("batteryLevel", round(s.battery, 1)),
                ("mode", json!(s.mode)),
            ],
            None => Vec::new(),
        }
    }

    /// Writes a writable property.
    pub(crate) fn write(
        &mut self,
        index: usize,
        name: &str,
        value: &Value,
    ) -> Result<Emission, DeviceError> {
        let spec = (index < self.devices.len())
            .then(|| spec(index))
            .and_then(|t| t.property(name))
            .ok_or_else(|| DeviceError::NotFound(format!("property {name}")))?;
        if !spec.writable {
            return Err(DeviceError::ReadOnly(name.to_owned()));
        }
        let number = value
            .as_f64()
            .ok_or_else(|| DeviceError::BadValue(format!("{name} must be a number")))?;
        let (lo, hi) = (
            spec.minimum.unwrap_or(f64::MIN),
            spec.maximum.unwrap_or(f64::MAX),
        );
        if !(lo..=hi).contains(&number) {
            return Err(DeviceError::BadValue(format!(
                "{name} must be between {lo} and {hi}"
            )));
        }
        match self.devices.get_mut(index) {
            Some(Device::Fridge(f)) if name == "targetTemperature" => {
                f.target = number;
                Ok(Emission::Property {
                    name: "targetTemperature",
                    value: round(number, 1),
                })
            }
            _ => Err(DeviceError::NotFound(format!("property {name}"))),
        }
    }

    /// Invokes an action; returns its output and the property change it causes.
    pub(crate) fn invoke(
        &mut self,
        index: usize,
        name: &str,
    ) -> Result<(Value, Emission), DeviceError> {
        match (self.devices.get_mut(index), name) {
            (Some(Device::Pump(p)), "stop" | "start") => {
                p.running = name == "start";
                let output = json!({ "running": p.running });
                let change = Emission::Property {
                    name: "running",
                    value: json!(p.running),
                };
                Ok((output, change))
            }
            _ => Err(DeviceError::NotFound(format!("action {name}"))),
        }
    }
}

/// Outside air for the fridge and the room (°C).
const AMBIENT: f64 = 22.0;

fn step_fridge(f: &mut Fridge, rng: &mut StdRng, emit: &mut impl FnMut(Emission)) {
    let visiting = f.visit.advance(rng, 4..=16, 60..=240);
    let left_open = f.left_open.advance(rng, 180..=260, INCIDENT_GAP);
    let door_open = visiting || left_open;
    match (door_open, f.door_open_for) {
        (true, None) => {
            f.door_open_for = Some(0);
            emit(Emission::Property {
                name: "doorOpen",
                value: json!(true),
            });
            emit(Emission::Event {
                name: "doorOpened",
                data: json!({ "temperature": round(f.temperature.value, 1) }),
            });
        }
        (true, Some(ticks)) => f.door_open_for = Some(ticks + 1),
        (false, Some(ticks)) => {
            f.door_open_for = None;
            emit(Emission::Property {
                name: "doorOpen",
                value: json!(false),
            });
            emit(Emission::Event {
                name: "doorClosed",
                data: json!({ "openTicks": ticks + 1 }),
            });
        }
        (false, None) => {}
    }
    // An open door lets the room warm towards the air outside (about 3 °C a minute at first);
    // closed, the compressor pulls it back to its target over a minute or two.
    let temperature = if door_open {
        f.temperature.rate = 0.002;
        f.temperature.toward(AMBIENT, rng)
    } else {
        f.temperature.rate = 0.012;
        f.temperature.toward(f.target, rng)
    };
    emit(Emission::Property {
        name: "temperature",
        value: round(temperature, 1),
    });
}

fn step_pump(p: &mut Pump, rng: &mut StdRng, emit: &mut impl FnMut(Emission)) {
    let blocked = p.blockage.advance(rng, 80..=140, INCIDENT_GAP);
    let (pressure, flow) = if !p.running {
        (0.0, 0.0)
    } else if blocked {
        // The outlet closes over half a minute: pressure builds, flow collapses.
        (9.0, 6.0)
    } else {
        (4.2, 38.0)
    };
    p.pressure.rate = if blocked { 0.03 } else { 0.06 };
    let pressure = p.pressure.toward(pressure, rng);
    let flow = p.flow.toward(flow, rng);
    emit(Emission::Property {
        name: "pressure",
        value: round(pressure, 2),
    });
    emit(Emission::Property {
        name: "flow",
        value: round(flow, 1),
    });
    if pressure > 8.0 && !p.fault_reported {
        p.fault_reported = true;
        emit(Emission::Event {
            name: "fault",
            data: json!({ "code": "overpressure", "pressure": round(pressure, 2) }),
        });
    } else if pressure < 6.0 {
        p.fault_reported = false;
    }
}

fn step_air(a: &mut Air, rng: &mut StdRng, emit: &mut impl FnMut(Emission)) {
    let busy = a.busy.advance(rng, 200..=600, 200..=600);
    let failed = a.ventilation_failed.advance(rng, 250..=400, INCIDENT_GAP);
    // People breathe CO2 in; the ventilation takes it out. Busy, the room settles near
    // 950 ppm; empty, near 520. Without ventilation it climbs past 1200 over a few minutes.
    let target = match (failed, busy) {
        (true, _) => 1600.0,
        (false, true) => 950.0,
        (false, false) => 520.0,
    };
    // Back after a failure, the ventilation runs at full speed until the air is fresh.
    a.co2.rate = if failed {
        0.006
    } else if a.co2.value > 1000.0 {
        0.015
    } else {
        0.008
    };
    let co2 = a.co2.toward(target, rng);
    let pm25 = a.pm25.toward(if busy { 12.0 } else { 8.0 }, rng);
    emit(Emission::Property {
        name: "co2",
        value: round(co2, 0),
    });
    emit(Emission::Property {
        name: "pm25",
        value: round(pm25, 1),
    });
    let level = air_level(co2, a.level);
    if level != a.level {
        a.level = level;
        emit(Emission::Property {
            name: "level",
            value: json!(level),
        });
        emit(Emission::Event {
            name: "levelChanged",
            data: json!({ "level": level, "co2": round(co2, 0) }),
        });
    }
}

/// The house's load (W), which the panels, the battery and the grid cover.
const HOUSE_LOAD: f64 = 1500.0;

fn step_solar(s: &mut Solar, rng: &mut StdRng, emit: &mut impl FnMut(Emission)) {
    let cloudy = s.cloud.advance(rng, 20..=80, 150..=500);
    // An outage lasts until the battery is low, and a minute more.
    let mut outage = s.outage.advance(rng, u32::MAX..=u32::MAX, INCIDENT_GAP);
    if outage {
        if s.battery < 18.0 && s.outage_tail.is_none() {
            s.outage_tail = Some(60);
        }
        if let Some(tail) = &mut s.outage_tail {
            *tail = tail.saturating_sub(1);
            if *tail == 0 {
                outage = false;
                s.outage_tail = None;
                s.outage.end(rng, INCIDENT_GAP);
            }
        }
    }
    let sun = match (outage, cloudy) {
        // The storm that took the grid down hides the sun too.
        (true, _) => 150.0,
        (false, true) => 900.0,
        (false, false) => 3100.0,
    };
    let power = s.power.toward(sun, rng);
    // The battery takes the surplus and covers the shortfall (in % per tick); the grid
    // keeps it above 40 % while it is up.
    let mut delta = (power - HOUSE_LOAD) / HOUSE_LOAD * 0.02;
    if outage {
        delta = (power - HOUSE_LOAD * 1.3) / HOUSE_LOAD * 0.05;
    } else if s.battery < 40.0 {
        delta = delta.max(0.12);
    }
    s.battery = (s.battery + delta).clamp(0.0, 100.0);
    emit(Emission::Property {
        name: "power",
        value: round(power, 0),
    });
    emit(Emission::Property {
        name: "batteryLevel",
        value: round(s.battery, 1),
    });
    let mode = if outage {
        "backup"
    } else if delta >= 0.0 {
        "charging"
    } else {
        "discharging"
    };
    if mode != s.mode {
        s.mode = mode;
        emit(Emission::Property {
            name: "mode",
            value: json!(mode),
        });
        emit(Emission::Event {
            name: "modeChanged",
            data: json!({ "mode": mode, "level": round(s.battery, 1) }),
        });
    }
    if s.battery < 20.0 && !s.low_reported {
        s.low_reported = true;
        emit(Emission::Event {
            name: "batteryLow",
            data: json!({ "level": round(s.battery, 1) }),
        });
    } else if s.battery > 30.0 {
        s.low_reported = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, ticks: usize) -> Vec<Vec<(usize, Emission)>> {
        let mut world = World::new(seed);
        (0..ticks).map(|_| world.step()).collect()
    }

    #[test]
    fn same_seed_same_run_other_seed_other_run() {
        assert_eq!(run(7, 50), run(7, 50));
        assert_ne!(run(7, 50), run(8, 50));
    }

    fn values(steps: &[Vec<(usize, Emission)>], thing: usize, prop: &str) -> Vec<f64> {
        steps
            .iter()
            .flatten()
            .filter_map(|(i, e)| match e {
                Emission::Property { name, value } if *i == thing && *name == prop => {
                    value.as_f64()
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_pump_blocks_early_and_recovers() {
        for seed in 0..20 {
            let steps = run(seed, 600);
            let pressure = values(&steps, 1, "pressure");
            let first_high = pressure.iter().position(|p| *p > 7.5);
            let first_high = first_high.unwrap_or_else(|| panic!("seed {seed}: no blockage"));
            // Within two minutes at the default 500 ms tick.
            assert!(
                first_high < 240,
                "seed {seed}: blockage at tick {first_high}"
            );
            let back = pressure[first_high..].iter().position(|p| *p <= 6.0);
            let back = back.unwrap_or_else(|| panic!("seed {seed}: pressure stayed high"));
            assert!(
                (20..300).contains(&back),
                "seed {seed}: back after {back} ticks"
            );
            let faults = steps
                .iter()
                .flatten()
                .filter(|(_, e)| matches!(e, Emission::Event { name: "fault", .. }))
                .count();
            assert_eq!(faults, 1, "seed {seed}");
        }
    }

    /// Episodes of `values` beyond `fire` (above it, or below it when `above` is false) until
    /// they are back within `clear`: (start, length) in ticks, as the rule would fire and
    /// resolve.
    fn episodes(values: &[f64], above: bool, fire: f64, clear: f64) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut since = None;
        for (tick, v) in values.iter().enumerate() {
            let (fires, clears) = if above {
                (*v > fire, *v <= clear)
            } else {
                (*v < fire, *v >= clear)
            };
            match since {
                None if fires => since = Some(tick),
                Some(start) if clears => {
                    out.push((start, tick - start));
                    since = None;
                }
                _ => {}
            }
        }
        assert!(since.is_none() || values.len() - since.unwrap_or(0) < 1000);
        out
    }

    #[test]
    fn values_move_smoothly_and_incidents_are_rare_and_recover() {
        // Three hours at the default tick.
        let ticks = 21_600;
        for seed in [1, 2, 3] {
            let steps = run(seed, ticks);
            for (thing, name, most) in [
                (0, "temperature", 0.2),
                (1, "pressure", 0.5),
                (2, "co2", 30.0),
                (3, "batteryLevel", 0.25),
            ] {
                let values = values(&steps, thing, name);
                let jump = values
                    .windows(2)
                    .map(|w| (w[1] - w[0]).abs())
                    .fold(0.0, f64::max);
                assert!(jump <= most, "seed {seed}: {name} jumped by {jump}");
            }
            // The bundled rules: each trips now and then (incidents come 10 to 30 minutes
            // apart per device), never every few seconds, and each time it clears again
            // after a minute or a few.
            for (thing, name, above, fire, clear) in [
                (1, "pressure", true, 7.5, 6.0),
                (0, "temperature", true, 8.0, 6.0),
                (2, "co2", true, 1200.0, 1000.0),
                (3, "batteryLevel", false, 20.0, 25.0),
            ] {
                let found = episodes(&values(&steps, thing, name), above, fire, clear);
                assert!(
                    (2..=12).contains(&found.len()),
                    "seed {seed}: {name}: {found:?}"
                );
                for (start, length) in &found {
                    assert!(
                        (20..=600).contains(length),
                        "seed {seed}: {name} at {start} lasted {length} ticks"
                    );
                }
                let gaps = found.windows(2).map(|w| w[1].0 - w[0].0);
                assert!(
                    gaps.into_iter().all(|g| g >= 1200),
                    "seed {seed}: {name}: {found:?}"
                );
            }
        }
    }

    #[test]
    fn every_thing_emits_and_every_value_fits_its_schema() {
        let steps = run(3, 2000);
        for (index, spec) in THINGS.iter().enumerate() {
            assert!(steps.iter().flatten().any(|(i, _)| *i == index));
            for (i, emission) in steps.iter().flatten() {
                let Emission::Property { name, value } = emission else {
                    continue;
                };
                if *i != index {
                    continue;
                }
                let prop = spec.property(name).expect("emitted property is declared");
                match prop.kind {
                    ValueType::Number | ValueType::Integer => {
                        let v = value.as_f64().expect("number");
                        assert!(v >= prop.minimum.unwrap_or(f64::MIN), "{name} = {v}");
                        assert!(v <= prop.maximum.unwrap_or(f64::MAX), "{name} = {v}");
                    }
                    ValueType::Boolean => assert!(value.is_boolean()),
                    ValueType::String => assert!(value.is_string()),
                }
            }
            for (i, emission) in steps.iter().flatten() {
                if let Emission::Event { name, .. } = emission
                    && *i == index
                {
                    assert!(spec.events.iter().any(|e| e.name == *name), "{name}");
                }
            }
        }
        // Whole numbers go out as JSON integers: `1536`, not `1536.0`.
        let co2 = steps.iter().flatten().find_map(|(i, e)| match e {
            Emission::Property { name: "co2", value } if *i == 2 => Some(value.clone()),
            _ => None,
        });
        assert!(co2.is_some_and(|v| v.is_i64()));
    }

    #[test]
    fn every_thing_has_events_within_a_short_run() {
        // The end-to-end chaos test watches 8 s at a 10 ms tick and wants events from each.
        for seed in 0..10 {
            let steps = run(seed, 500);
            for (index, spec) in THINGS.iter().enumerate() {
                let events = steps
                    .iter()
                    .flatten()
                    .filter(|(i, e)| *i == index && matches!(e, Emission::Event { .. }))
                    .count();
                assert!(events > 0, "seed {seed}: no event from {}", spec.slug);
            }
        }
    }

    #[test]
    fn writes_and_actions_are_checked() {
        let mut world = World::new(1);
        assert_eq!(
            world.write(0, "targetTemperature", &json!(2.0)),
            Ok(Emission::Property {
                name: "targetTemperature",
                value: json!(2.0)
            })
        );
        assert_eq!(
            world.write(0, "temperature", &json!(2.0)),
            Err(DeviceError::ReadOnly("temperature".into()))
        );
        assert!(matches!(
            world.write(0, "targetTemperature", &json!(40)),
            Err(DeviceError::BadValue(_))
        ));
        let (output, _) = world.invoke(1, "stop").expect("pump stops");
        assert_eq!(output, json!({ "running": false }));
        assert!(matches!(
            world.invoke(0, "stop"),
            Err(DeviceError::NotFound(_))
        ));
    }
}
