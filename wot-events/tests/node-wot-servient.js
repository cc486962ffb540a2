// A small node-wot servient used by tests/node_wot.rs.
//
// Usage: node node-wot-servient.js   (NODE_PATH must point at a node_modules folder holding
// @node-wot/core and @node-wot/binding-http 0.9.2)
//
// It listens on 127.0.0.1 on a free port and exposes one Thing, "Test Lamp", with:
// - `counter`: an observable, read-only integer, incremented by the `increment` action;
// - `brightness`: a writable, observable integer 0..100;
// - `increment`: an action taking an optional step (integer) and returning the new counter;
// - `stepped`: an event emitted by `increment` with {"counter": n, "step": s}.
// Once the Thing is exposed it prints one JSON line `{"port": N, "td": "<url>"}` on stdout.
// It exits when stdin closes (the test drops the pipe) or on SIGTERM.
"use strict";

const { Servient, Helpers } = require("@node-wot/core");
const { HttpServer } = require("@node-wot/binding-http");

async function main() {
    Helpers.setStaticAddress("127.0.0.1");
    const httpServer = new HttpServer({ port: 0, address: "127.0.0.1" });
    const servient = new Servient();
    servient.addServer(httpServer);
    const WoT = await servient.start();

    let counter = 0;
    let brightness = 50;

    const thing = await WoT.produce({
        title: "Test Lamp",
        id: "urn:example:test-lamp",
        description: "A Thing exposed by node-wot for the wot-events interoperability test",
        properties: {
            counter: { type: "integer", minimum: 0, observable: true, readOnly: true },
            brightness: { type: "integer", minimum: 0, maximum: 100, observable: true },
        },
        actions: {
            increment: {
                input: { type: "integer", minimum: 1 },
                output: { type: "integer" },
            },
        },
        events: {
            stepped: {
                data: {
                    type: "object",
                    properties: { counter: { type: "integer" }, step: { type: "integer" } },
                },
            },
        },
    });

    thing.setPropertyReadHandler("counter", async () => counter);
    thing.setPropertyReadHandler("brightness", async () => brightness);
    thing.setPropertyWriteHandler("brightness", async (value) => {
        brightness = await value.value();
        thing.emitPropertyChange("brightness");
    });
    thing.setActionHandler("increment", async (params) => {
        let step = 1;
        if (params !== undefined && params !== null) {
            const v = await params.value();
            if (typeof v === "number") {
                step = v;
            }
        }
        counter += step;
        thing.emitPropertyChange("counter");
        thing.emitEvent("stepped", { counter, step });
        return counter;
    });

    await thing.expose();
    const port = httpServer.getPort();
    process.stdout.write(
        JSON.stringify({ port, td: `http://127.0.0.1:${port}/test-lamp` }) + "\n"
    );

    const stop = async () => {
        try {
            await servient.shutdown();
        } finally {
            process.exit(0);
        }
    };
    process.stdin.on("end", stop);
    process.stdin.on("close", stop);
    process.stdin.resume();
    process.on("SIGTERM", stop);
}

main().catch((err) => {
    process.stderr.write(`servient failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
});
