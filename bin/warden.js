#!/usr/bin/env node
// The `warden` command. warden ships TypeScript sources; tsx loads them.
import { register } from 'tsx/esm/api';

register();
await import('../lib/cli/main.ts');
