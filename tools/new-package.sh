#!/usr/bin/env bash
# tools/new-package.sh NAME [DEP...]: creates packages/NAME (or packages/devices/NAME for devices/NAME) with the
# standard package.json, tsconfig.json, test/tsconfig.json and vitest.config.ts. DEPs are @vfio-ts package names
# without the scope (e.g. uapi core); they become workspace dependencies and project references.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
dir=packages/$name
up=../..; [[ $name == */* ]] && up=../../..
short=${name##*/}
mkdir -p "$dir/src" "$dir/test"
deps=""; refs=""
for d in "$@"; do
  deps="$deps\"@vfio-ts/$d\": \"workspace:^\", "
  if [[ -d packages/$d ]]; then refs="$refs{ \"path\": \"$up/packages/$d\" }, "; else refs="$refs{ \"path\": \"$up/packages/devices/$d\" }, "; fi
done
deps=${deps%, }; refs=${refs%, }
[[ -f $dir/package.json ]] || cat > "$dir/package.json" <<JSON
{
  "name": "@vfio-ts/$short",
  "version": "0.0.0",
  "description": "",
  "license": "MIT",
  "type": "module",
  "sideEffects": false,
  "engines": { "node": ">=20.19" },
  "exports": {
    ".": { "@vfio-ts/source": "./src/index.ts", "types": "./dist/index.d.ts", "import": "./dist/index.js" },
    "./package.json": "./package.json"
  },
  "files": ["dist", "!dist/.tsbuildinfo", "README.md", "CHANGELOG.md"],
  "scripts": {
    "build": "tsc -b",
    "typecheck": "tsc -p test/tsconfig.json",
    "test": "vitest run --reporter=default --reporter=json --outputFile.json=.vitest/report.json",
    "bench": "tsx --conditions=@vfio-ts/source bench/index.ts"
  },
  "dependencies": { $deps }
}
JSON
[[ -f $dir/tsconfig.json ]] || cat > "$dir/tsconfig.json" <<JSON
{
  "extends": "$up/tsconfig.base.json",
  "compilerOptions": { "rootDir": "src", "outDir": "dist", "tsBuildInfoFile": "dist/.tsbuildinfo" },
  "include": ["src"],
  "exclude": ["src/**/*.test.ts"],
  "references": [ $refs ]
}
JSON
[[ -f $dir/test/tsconfig.json ]] || cat > "$dir/test/tsconfig.json" <<JSON
{
  "extends": "$up/../tsconfig.base.json",
  "compilerOptions": { "composite": false, "noEmit": true, "rootDir": "..", "declaration": false, "declarationMap": false },
  "include": [".", "../src", "../bench"]
}
JSON
[[ -f $dir/vitest.config.ts ]] || echo "export { default } from '$up/vitest.shared.js';" > "$dir/vitest.config.ts"
# keep the root tsconfig.json references in step with the packages
node -e '
const fs=require("fs"),path=require("path");
const dirs=[];for(const r of ["packages","packages/devices","examples"]){if(!fs.existsSync(r))continue;for(const n of fs.readdirSync(r).sort()){const d=path.join(r,n);if(fs.existsSync(path.join(d,"tsconfig.json"))&&fs.existsSync(path.join(d,"package.json")))dirs.push(d)}}
fs.writeFileSync("tsconfig.json",JSON.stringify({files:[],references:dirs.map(p=>({path:p}))},null,2)+"\n")'
echo "created $dir"
