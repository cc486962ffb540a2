//! The simulated devices, without any I/O.
//!
//! Each device is a small state machine advanced by [`World::step`] once per tick. Values follow
//! bounded random walks; every device also has an *excursion*, a stretch of ticks during which
//! one value leaves its normal band far enough to trip the bundled alert rules
//! (`rules/default.yaml`) and comes back. Excursions are scheduled from the same seeded RNG, the
//! first one early, so that a short run (`--headless --duration 10s`) shows an alert firing and
//! resolving, and a run with the same seed is the same run.

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
        description: "A booster pump; now and then its outlet pressure spikes and it reports a fault.",
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
        description: "A rooftop inverter with a battery that runs low when clouds pass.",
        properties: &[
            number("power", "AC power", "W", Some((0.0, 5000.0))),
            number("batteryLevel", "Battery level", "%", Some((0.0, 100.0))),
            plain("mode", "Battery mode", ValueType::String),
        ],
        events: &[EventSpec {
            name: "batteryLow",
            title: "Battery low",
            fields: &[("level", ValueType::Number)],
        }],
        actions: &[],
    },
];

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

/// A value that wanders around a centre, pulled back towards it, within hard limits.
#[derive(Debug, Clone)]
struct Walk {
    value: f64,
    centre: f64,
    step: f64,
    pull: f64,
    lo: f64,
    hi: f64,
}

impl Walk {
    fn new(centre: f64, step: f64, lo: f64, hi: f64) -> Self {
        Walk {
            value: centre,
            centre,
            step,
            pull: 0.15,
            lo,
            hi,
        }
    }

    fn advance(&mut self, rng: &mut StdRng) -> f64 {
        let noise = rng.random_range(-self.step..=self.step);
        self.value += noise + (self.centre - self.value) * self.pull;
        self.value = self.value.clamp(self.lo, self.hi);
        self.value
    }
}

/// Rounds for display-friendly JSON (the wire carries what a real sensor would report).
fn round(value: f64, decimals: i32) -> Value {
    let factor = 10f64.powi(decimals);
    json!((value * factor).round() / factor)
}

/// Counts down to the next excursion and then through it.
#[derive(Debug, Clone)]
struct Excursion {
    /// Ticks until the next excursion starts (while `remaining == 0`).
    wait: u32,
    /// Ticks left in the running excursion.
    remaining: u32,
}

impl Excursion {
    fn new(first: u32) -> Self {
        Excursion {
            wait: first,
            remaining: 0,
        }
    }

    /// Advances one tick; returns whether the excursion is running during this tick.
    fn advance(&mut self, rng: &mut StdRng) -> bool {
        if self.remaining > 0 {
            self.remaining -= 1;
            if self.remaining == 0 {
                self.wait = rng.random_range(30..=80);
            }
            return self.remaining > 0;
        }
        if self.wait > 0 {
            self.wait -= 1;
            return false;
        }
        self.remaining = rng.random_range(10..=16);
        true
    }
}

#[derive(Debug, Clone)]
struct Fridge {
    temperature: f64,
    target: f64,
    door_open_for: Option<u32>,
    door: Excursion,
}

#[derive(Debug, Clone)]
struct Pump {
    pressure: Walk,
    flow: Walk,
    running: bool,
    spike: Excursion,
    fault_reported: bool,
}

#[derive(Debug, Clone)]
struct Air {
    co2: Walk,
    pm25: Walk,
    level: &'static str,
    busy: Excursion,
}

#[derive(Debug, Clone)]
struct Solar {
    power: Walk,
    battery: f64,
    mode: &'static str,
    cloud: Excursion,
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

fn air_level(co2: f64) -> &'static str {
    if co2 < 800.0 {
        "good"
    } else if co2 < 1200.0 {
        "moderate"
    } else {
        "poor"
    }
}

impl World {
    /// A world in its initial state; `seed` fixes every later step.
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        // The pump spikes first, within a few ticks, so every short run shows an alert.
        let pump_first = rng.random_range(3..=6);
        let devices = vec![
            Device::Fridge(Fridge {
                temperature: 3.5,
                target: 3.5,
                door_open_for: None,
                door: Excursion::new(rng.random_range(8..=20)),
            }),
            Device::Pump(Pump {
                pressure: Walk::new(4.2, 0.15, 0.0, 10.0),
                flow: Walk::new(38.0, 1.2, 0.0, 80.0),
                running: true,
                spike: Excursion::new(pump_first),
                fault_reported: false,
            }),
            Device::Air(Air {
                co2: Walk::new(620.0, 25.0, 400.0, 5000.0),
                pm25: Walk::new(9.0, 0.8, 0.0, 500.0),
                level: "good",
                busy: Excursion::new(rng.random_range(10..=30)),
            }),
            Device::Solar(Solar {
                power: Walk::new(3100.0, 120.0, 0.0, 5000.0),
                battery: 46.0,
                mode: "charging",
                cloud: Excursion::new(rng.random_range(15..=40)),
                low_reported: false,
            }),
        ];
        World { rng, devices }
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
                ("temperature", round(f.temperature, 2)),
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
        let spec = THINGS
            .get(index)
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

fn step_fridge(f: &mut Fridge, rng: &mut StdRng, emit: &mut impl FnMut(Emission)) {
    let door_open = f.door.advance(rng);
    match (door_open, f.door_open_for) {
        (true, None) => {
            f.door_open_for = Some(0);
            emit(Emission::Property {
                name: "doorOpen",
                value: json!(true),
            });
            emit(Emission::Event {
                name: "doorOpened",
                data: json!({ "temperature": round(f.temperature, 2) }),
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
    if f.door_open_for.is_some() {
        // Warm air floods in: about +0.9 °C per tick, so a long opening passes 8 °C.
        f.temperature += rng.random_range(0.6..1.2);
    } else {
        // The compressor pulls the room back towards its target.
        f.temperature += (f.target - f.temperature) * 0.25 + rng.random_range(-0.08..=0.08);
    }
    f.temperature = f.temperature.clamp(-10.0, 30.0);
    emit(Emission::Property {
        name: "temperature",
        value: round(f.temperature, 2),
    });
}

fn step_pump(p: &mut Pump, rng: &mut StdRng, emit: &mut impl FnMut(Emission)) {
    let spiking = p.spike.advance(rng);
    if !p.running {
        p.pressure.centre = 0.0;
        p.flow.centre = 0.0;
    } else if spiking {
        // A closing valve downstream: pressure shoots up, flow collapses.
        p.pressure.centre = 9.0;
        p.flow.centre = 6.0;
    } else {
        p.pressure.centre = 4.2;
        p.flow.centre = 38.0;
    }
    p.pressure.pull = if spiking { 0.5 } else { 0.3 };
    let pressure = p.pressure.advance(rng);
    let flow = p.flow.advance(rng);
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
    let busy = a.busy.advance(rng);
    a.co2.centre = if busy { 1600.0 } else { 620.0 };
    a.co2.pull = if busy { 0.35 } else { 0.2 };
    let co2 = a.co2.advance(rng);
    let pm25 = a.pm25.advance(rng);
    emit(Emission::Property {
        name: "co2",
        value: round(co2, 0),
    });
    emit(Emission::Property {
        name: "pm25",
        value: round(pm25, 1),
    });
    let level = air_level(co2);
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

fn step_solar(s: &mut Solar, rng: &mut StdRng, emit: &mut impl FnMut(Emission)) {
    let cloudy = s.cloud.advance(rng);
    s.power.centre = if cloudy { 250.0 } else { 3100.0 };
    s.power.pull = if cloudy { 0.5 } else { 0.15 };
    let power = s.power.advance(rng);
    // The house draws about 1.5 kW; the battery takes or gives the difference.
    let delta = if cloudy {
        -rng.random_range(3.0..5.0)
    } else {
        (power - 1500.0) / 1500.0 + rng.random_range(-0.3..=0.3)
    };
    s.battery = (s.battery + delta).clamp(0.0, 100.0);
    if !cloudy && s.battery < 25.0 {
        // Recovering after a cloud: grid charging tops it up quickly.
        s.battery += 4.0;
    }
    emit(Emission::Property {
        name: "power",
        value: round(power, 0),
    });
    emit(Emission::Property {
        name: "batteryLevel",
        value: round(s.battery, 1),
    });
    let mode = if delta >= 0.0 {
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
    fn pump_spikes_above_the_alert_threshold_early_and_comes_back() {
        for seed in 0..20 {
            let steps = run(seed, 40);
            let pressure = values(&steps, 1, "pressure");
            let first_high = pressure.iter().position(|p| *p > 7.5);
            let first_high = first_high.unwrap_or_else(|| panic!("seed {seed}: no spike"));
            assert!(first_high < 12, "seed {seed}: spike at tick {first_high}");
            assert!(
                pressure[first_high..].iter().any(|p| *p < 6.0),
                "seed {seed}: pressure never came back: {pressure:?}"
            );
            let faults = steps
                .iter()
                .flatten()
                .filter(|(_, e)| matches!(e, Emission::Event { name: "fault", .. }))
                .count();
            assert!(faults >= 1, "seed {seed}: no fault event");
        }
    }

    #[test]
    fn every_thing_emits_and_every_value_fits_its_schema() {
        let steps = run(3, 200);
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
        }
        let opened = steps.iter().flatten().any(|(_, e)| {
            matches!(
                e,
                Emission::Event {
                    name: "doorOpened",
                    ..
                }
            )
        });
        assert!(opened);
        assert!(values(&steps, 0, "temperature").iter().any(|t| *t > 8.0));
        assert!(values(&steps, 2, "co2").iter().any(|c| *c > 1200.0));
        assert!(values(&steps, 3, "batteryLevel").iter().any(|b| *b < 20.0));
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
