#!/usr/bin/env bash
# The tests that need kernel modules this machine's kernel may lack (openvswitch for the fast
# datapath and its integration tests, bonding for `weft doctor`'s bonding check). They already
# ran in `swift test`; where they skipped there, this runs them inside the OVS VM
# (../shared/tools/ovs-vm), whose Debian kernel has the modules, and fails if any of them fails or
# skips there. Without the VM script it says plainly that they were skipped and why (and fails
# under CI, where they must run).
set -euo pipefail
cd "$(dirname "$0")/.."
TESTS="WeftNetlinkTests.ODPTests,IntegrationTests.DoctorTests/testBalanceRRBondUnderABridgeWarns,IntegrationTests.FastdpLifecycleTests,IntegrationTests.FastdpTests"
BIN_DIR=${WEFT_BIN_DIR:-$PWD/.build/debug}
VM=../shared/tools/ovs-vm/run-in-ovs-vm.sh

have_modules() {
  { [ -d /sys/module/openvswitch ] || modprobe -n openvswitch 2>/dev/null; } &&
  { [ -d /sys/module/bonding ] || modprobe -n bonding 2>/dev/null; }
}
if have_modules; then
  echo "test-in-vm: this kernel has openvswitch and bonding; those tests ran natively in swift test"
  exit 0
fi
if [ ! -x "$VM" ]; then
  echo "test-in-vm: SKIPPED $TESTS: this kernel lacks openvswitch/bonding and $VM is not there"
  [ "${CI:-}" = true ] && { echo "test-in-vm: under CI these tests must run" >&2; exit 1; }
  exit 0
fi
echo "test-in-vm: running $TESTS in the OVS VM"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# Modules loaded before the command: the datapath and its VXLAN vport; veth, bridge and tun for
# routers in namespaces; nf_tables for FastdpTests blocking UDP 6784 with nft; bonding for doctor.
# Not vport_gre: its fallback gretap devices in every namespace break RouteNetlinkTests.
OVSVM_QUIET=1 OVSVM_MODULES="openvswitch vport_vxlan vxlan nf_tables bonding veth bridge tun" \
  "$VM" "cd $PWD && WEFT_BIN_DIR=$BIN_DIR $BIN_DIR/WeftPackageTests.xctest $TESTS" >"$log" 2>&1 || status=$?
grep -E "^Test Case .*(passed|failed|skipped)|error:|Executed|^FastdpTests: " "$log" || true
echo "test-in-vm: the VM run took ${SECONDS}s (emulated timings: not performance)"
if [ "$status" -ne 0 ] || grep -q "skipped" "$log" || ! grep -q "Executed .* with 0 failures" "$log"; then
  echo "test-in-vm: FAILED (status $status); the VM's output:" >&2
  tail -n 60 "$log" >&2
  exit 1
fi
echo "test-in-vm: all passed in the VM"
