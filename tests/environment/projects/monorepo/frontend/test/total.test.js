const test = require("node:test");
const assert = require("node:assert");
const { total } = require("../src/total");

test("sums the cents", () => assert.strictEqual(total([{ cents: 1 }, { cents: 2 }]), 3));
