#!/usr/bin/env node
console.log(JSON.stringify({ hello: 1 }));
