#!/usr/bin/env node
// A foreign (non-Python) client of qenex.v1.Node, as a Node.js user would write one:
// @grpc/proto-loader loads qenex/v1/node.proto with the repository's proto/ folder as the
// only include root, and @grpc/grpc-js calls the node. It proves the protos resolve
// without the Python package layout (imports are "qenex/v1/*.proto").
//
//   node client.js HOST:PORT ACCOUNT_HEX [SIGNED_TX_HEX]
//
// Prints one JSON object: {status, account[, submit]}; bytes as hex, 64-bit integers as
// decimal strings (proto3 JSON style, so no precision is lost), enums by name. An RPC
// failure prints {error: {rpc, code, details}} and exits 1.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', '..', 'proto');
const DEADLINE_MS = 20000;
const SUBMIT_WAIT_MS = 15000;

function loadNodeService() {
  const definition = protoLoader.loadSync('qenex/v1/node.proto', {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).qenex.v1.Node;
}

// Buffers become hex strings, everywhere in an answer.
function plain(value) {
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function call(client, rpc, request) {
  const deadline = new Date(Date.now() + DEADLINE_MS);
  return new Promise((resolve, reject) => {
    client[rpc](request, { deadline }, (err, reply) => {
      if (err) reject(Object.assign(err, { rpc }));
      else resolve(plain(reply));
    });
  });
}

// The Python side hands over the exact signed bytes of a SignedTransaction. grpc-js works
// with objects, so decode them with the method's own deserializer: a
// SubmitTransactionRequest whose field 1 (tx, length-delimited: tag byte 0x0a) holds them.
function submitRequest(service, signedTxHex) {
  const tx = Buffer.from(signedTxHex, 'hex');
  const length = [];
  for (let n = tx.length; ; n >>>= 7) {
    if (n < 0x80) { length.push(n); break; }
    length.push((n & 0x7f) | 0x80);
  }
  const wrapped = Buffer.concat([Buffer.from([0x0a, ...length]), tx]);
  const request = service.service.SubmitTransaction.requestDeserialize(wrapped);
  request.wait_for_commit = true;
  request.timeout_ms = SUBMIT_WAIT_MS;
  return request;
}

async function main(argv) {
  if (argv.length < 2) {
    throw new Error('usage: node client.js HOST:PORT ACCOUNT_HEX [SIGNED_TX_HEX]');
  }
  const [address, accountHex, signedTxHex] = argv;
  const Node = loadNodeService();
  const client = new Node(address, grpc.credentials.createInsecure());
  try {
    const out = {};
    out.status = await call(client, 'GetStatus', {});
    out.account = await call(client, 'GetAccount', { address: Buffer.from(accountHex, 'hex') });
    if (signedTxHex) {
      out.submit = await call(client, 'SubmitTransaction', submitRequest(Node, signedTxHex));
    }
    return out;
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then(
  (out) => { process.stdout.write(JSON.stringify(out) + '\n'); },
  (err) => {
    const error = { rpc: err.rpc || null, code: err.code ?? null, details: err.details || err.message };
    process.stdout.write(JSON.stringify({ error }) + '\n');
    process.exitCode = 1;
  },
);
