/**
 * `chorus chaos` runs the chaos script of the checkout it belongs to, passing every argument
 * and its exit code through: its usage text, and a usage error (exit 2) that starts nothing.
 */

import { expect } from 'chai';
import { runCli } from '../support/processes.js';

describe('cli: chorus chaos', function () {
  this.timeout(60000);

  it('prints the chaos run\'s usage', async () => {
    const { code, stdout } = await runCli(['chaos', '--help']);
    expect(code).to.equal(0);
    expect(stdout).to.match(/--nodes N/);
    expect(stdout).to.match(/--faults LIST/);
  });

  it('passes a bad option through and returns the run\'s usage error without starting anything', async () => {
    const { code, stderr } = await runCli(['chaos', '--nodes', '1']);
    expect(code).to.equal(2);
    expect(stderr).to.match(/nodes/);
  });
});
