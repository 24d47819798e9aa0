//! The command line: argument definitions (clap) and one module per subcommand.

mod convert;
mod demo;
pub mod exit;
mod fixup;
mod info;
mod inspect;
mod migrate;
mod p2v;
pub mod progress;
mod units;
mod v2p;
mod v2v;
mod wave;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use exit::{CliResult, Exit, Failure};

const EXIT_CODES: &str = "\
EXIT STATUS:
  0  success
  1  bad input: the source is missing, unreadable, malformed, unsupported or of unknown format
  2  usage error: the command line is wrong
  3  the output could not be written
  4  --verify found the output different from the source
  5  a fixup failed; the disk was left unchanged
  6  libvirt refused (ferry v2v --define): no daemon, permission, name or UUID exists
  7  ferry migrate: a preflight check failed; nothing was moved
  8  ferry migrate: the move failed; the guest still runs on the source
  9  ferry wave: some VMs failed (the others are done; run the wave again to retry them)
130  interrupted; partial output was removed";

/// Set by the Ctrl-C handler; long operations poll it and unwind, removing partial output.
pub fn interrupted() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        // Without a handler the default action kills the process and leaves the temporary
        // output behind; failing to install one only loses that cleanup.
        let _ = ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst));
        flag
    })
    .clone()
}

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Move machines into KVM and back out: convert VMware, Xen and physical disks, verified",
    long_about = "ferry converts the disks of VMware, Xen and physical machines into qcow2 or raw \
                  for KVM, byte for byte and in parallel, and proves the result equal to the source.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert a disk image to qcow2 or raw (argument order as `qemu-img convert`)
    #[command(after_help = CONVERT_HELP)]
    Convert(ConvertArgs),
    /// Show a disk's format, size, allocation, chain, partitions and filesystems
    #[command(after_help = EXIT_CODES)]
    Info(InfoArgs),
    /// Show the operating system on each disk: partitions, LVM, root, OS, kernels,
    /// bootloader, fstab, network configuration, guest tools (read-only, no helper VM)
    #[command(after_help = EXIT_CODES)]
    Inspect(InspectArgs),
    /// Make a converted Linux guest boot under KVM: device names, virtio initramfs,
    /// consoles, NIC names, foreign guest tools (in place, no helper VM)
    #[command(after_help = FIXUP_HELP)]
    Fixup(FixupArgs),
    /// Move a VMware, OVF/OVA, Xen or libvirt guest (or bare disks) to KVM: convert every
    /// disk, fix the guest, write libvirt domain XML, optionally define and start it
    #[command(name = "v2v", after_help = V2V_HELP)]
    V2v(V2vArgs),
    /// Move a libvirt domain to another host, live or offline, after preflight checks of
    /// what makes moves fail (name resolution, ports, storage, cache mode, CPU, memory)
    #[command(after_help = MIGRATE_HELP)]
    Migrate(MigrateArgs),
    /// Image this physical machine (or raw dumps of one) into a KVM guest: hardware
    /// inventory, used blocks only with --used-only, then the v2v pipeline
    #[command(name = "p2v", after_help = P2V_HELP)]
    P2v(P2vArgs),
    /// Put a VM disk back on bare metal (or a raw file): reverse fixups for physical
    /// hardware, zero ranges skipped, written disk verified, optional grow
    #[command(name = "v2p", after_help = V2P_HELP)]
    V2p(V2pArgs),
    /// Move many VMs listed in an inventory, a bounded number at a time, resumable: each
    /// through the v2v pipeline, with a report of every VM
    #[command(after_help = WAVE_HELP)]
    Wave(WaveArgs),
    /// Build a small sample VMware disk and convert it, showing each step
    #[command(after_help = EXIT_CODES)]
    Demo(DemoArgs),
}

const WAVE_HELP: &str = "\
INVENTORY (TOML; relative paths are relative to the inventory's folder):
  [defaults]                     # optional; every key can be set per VM too
  format = \"qcow2\"               # qcow2 | raw
  network = \"network:default\"    # network:NAME | bridge:NAME | user
  network_map = [\"VM Network=bridge:br0\"]
  fixups = true                  # verify = true
  define = false                 # start = false (implies define)
  connect = \"qemu:///system\"     # pool = \"default\", virt_type = \"kvm\"

  [[vm]]
  source = \"web01/web01.vmx\"     # .vmx, .ovf, .ova, xl.cfg, libvirt XML, or a disk list
  name = \"web01\"                 # optional; also the VM's key in the resume state

RESUMING: every VM that ends is recorded in OUT/wave-state.json (atomically). Running the
same inventory again skips the VMs done and retries the others; a VM that was running when
the wave was killed runs again from the start, and the temporary files it left are removed.
OUT/wave.lock keeps a second wave out of the folder. OUT/wave-report.json lists every VM:
done, skipped (done before), failed (with its error), interrupted, not run.

EXAMPLES:
  ferry wave --dry-run wave1.toml --out /var/lib/libvirt/images/wave1
  ferry wave wave1.toml --out /var/lib/libvirt/images/wave1 --parallel 4
  ferry wave wave1.toml --out wave1 --json > wave1.json

EXIT STATUS:
  0  every VM is done (now or before), or planned (--dry-run)
  1  the inventory or the wave state is unreadable or invalid
  2  usage error
  3  the output folder cannot be created, is in use by another wave, or the state cannot
     be written
  9  some VMs failed; the others are done (run again to retry the failed ones)
130  interrupted: VMs running were stopped and cleaned up; run again to resume";

#[derive(Debug, Args)]
pub struct WaveArgs {
    /// The inventory: a TOML file with [[vm]] tables (see below)
    #[arg(value_name = "INVENTORY")]
    pub inventory: PathBuf,
    /// Folder receiving every VM's disks, NAME.xml and NAME.report.json, and the wave's
    /// state and report (created if missing)
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out: PathBuf,
    /// VMs moved at once
    #[arg(short = 'p', long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Copy threads shared by the VMs running at once (default: all cores)
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Plan every VM not done yet (description, disks, bytes to copy); write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the wave report as JSON on stdout instead of text
    #[arg(long)]
    pub json: bool,
}

const CONVERT_HELP: &str = "\
INPUT FORMATS (probed by magic unless --source-format is given):
  vmdk   monolithicSparse, monolithicFlat, twoGbMaxExtentSparse/Flat, streamOptimized,
         ESXi vmfs (+ -flat.vmdk), vmfsSparse and seSparse deltas, snapshot chains
  vhd    fixed, dynamic, differencing (XenServer)
  qcow2  v2 and v3, zero and compressed clusters; backing files with --follow-backing
  raw    files, raw dumps and block devices (never probed: say --source-format raw)
  bochs, parallels, cloop  read-only legacy formats (growing Bochs, Parallels v1/v2, cloop v2)

EXAMPLES:
  ferry convert disk.vmdk disk.qcow2
  ferry convert -f raw -O qcow2 --compress zstd --verify /dev/sdb sdb.qcow2
  ferry convert --dry-run --json web01.vmdk web01.qcow2

The output is written under a temporary name next to DST and renamed into place only when
complete; the source is opened read-only.

EXIT STATUS:
  0  success
  1  bad input: the source is missing, unreadable, malformed, unsupported or of unknown format
  2  usage error: the command line is wrong
  3  the output could not be written
  4  --verify found the output different from the source
130  interrupted; partial output was removed";

const FIXUP_HELP: &str = "\
FIXUPS (in this order; each is skipped, with the reason, when the guest does not need it):
  devices    /dev/sda1, /dev/hda1, /dev/xvda1, cciss and nvme names in /etc/fstab,
             /etc/crypttab, root= and resume= of grub.cfg, /etc/default/grub, BLS entries
             and grubenv, initramfs-tools RESUME=: UUID= where the partition has one,
             else the virtio name (/dev/vdb2 for /dev/sdb2)
  consoles   hvc0/xvc0 (Xen) -> ttyS0 on kernel command lines, inittab and getty units
  network    each configured NIC pinned to its MAC by a systemd .link file, so it keeps
             its name on virtio-net; stale 70-persistent-net.rules cleared
  tools      open-vm-tools, VMware Tools and XenServer tools masked; Xen-only modules off
  initramfs  virtio_pci, virtio_blk, virtio_scsi, virtio_net and their dependencies
             appended (as a cpio archive built from the guest's /lib/modules) to every
             kernel's initramfs; initramfs-tools and dracut; guest code is never run

Every edited file keeps its original as FILE.ferry-orig; a second run changes nothing.
Raw disks are written in place; a qcow2 is rewritten beside itself and renamed over the
original once complete. Only ext2/3/4 root filesystems are edited.

EXAMPLES:
  ferry fixup --dry-run web01.qcow2     print the plan as diffs, write nothing
  ferry fixup web01.qcow2
  ferry fixup --json -f raw /dev/vg0/web01

EXIT STATUS:
  0  success (also when nothing needed fixing)
  1  bad input: unreadable disk, no Linux root found, unsupported format or filesystem
  2  usage error: the command line is wrong
  3  the disk could not be written
  5  a fixup failed; the disk was left unchanged
130  interrupted; the disk was left unchanged";

const V2V_HELP: &str = "\
SOURCES (the kind is read from the content, not the file name):
  NAME.vmx                 VMware: vCPUs, memory, firmware, disks in controller order, NICs
  NAME.ovf, NAME.ova       OVF 1.x/2.x; an OVA's manifest is verified and its disks are
                           read straight out of the tar
  xl.cfg / xm config       Xen: disk=[...] in both syntaxes, vif=[...], PV or HVM
  NAME.xml                 a libvirt domain of the source guest (virsh dumpxml)
  DISK [DISK...]           bare disks (any format ferry reads): 2 vCPUs, 2 GiB assumed

STAGES:
  read      the description, every disk opened read-only
  fixup     the Linux guest fixed for KVM in an overlay (see `ferry fixup --help`);
            the source is never written
  convert   every disk converted at once to --out/NAME-diskN.qcow2 (or raw)
  verify    each output proved equal to the fixed source, extent by extent
  domain    --out/NAME.xml: q35, OVMF for UEFI guests, virtio disks vda.. in source order,
            virtio-net with the source MACs, serial console, guest agent channel, RNG;
            SATA and e1000 when the guest cannot get virtio drivers
  define    with --define: the domain defined (persistent) at --connect; --start starts it
  --out/NAME.report.json records every stage and how long it took.

NETWORKS: each NIC keeps its MAC. A NIC whose source network is named by --network-map
SRC=TARGET is connected to TARGET, others to --network. TARGET is network:NAME,
bridge:NAME or user (QEMU's user-mode network); a bare NAME means network:NAME.

EXAMPLES:
  ferry v2v --dry-run web01.vmx --out /var/lib/libvirt/images
  ferry v2v web01.vmx --out /var/lib/libvirt/images --define --start
  ferry v2v appliance.ova --out out --no-fixups --network-map 'VM Network=bridge:br0'
  ferry v2v /etc/xen/db01.cfg --out out --define --connect qemu+ssh://kvm1/system
  ferry v2v web01.vmx --out /nfs/images --start --migrate-to qemu+ssh://kvm2/system

EXIT STATUS:
  0  success
  1  bad input: unreadable or malformed description or disk, no OS to fix (see --no-fixups)
  2  usage error: the command line is wrong
  3  the output could not be written, or an output already exists
  4  an output differed from its source; nothing was left in --out
  5  a fixup failed; nothing was written
  6  libvirt refused: no daemon, permission denied, the name or UUID exists, or start failed
  7  --migrate-to: a preflight check failed; the guest runs here, defined and started
  8  --migrate-to: the move failed; the guest runs here, defined and started
130  interrupted; nothing was left in --out";

const V2P_HELP: &str = "\
FIXUPS FOR PHYSICAL HARDWARE (into an overlay; the source is never written):
  devices    device names in fstab, crypttab and kernel command lines become UUID=
  initramfs  storage and NIC drivers of real machines (ahci, sd_mod, nvme, megaraid_sas,
             mpt3sas, hpsa, usb_storage, e1000e, igb, ixgbe, i40e, ice, bnx2x, tg3, r8169,
             ...) that the guest's kernel has as modules, appended to every initramfs
  consoles   console=tty0 added before console=ttyS0: the serial console is kept
  tools      qemu-guest-agent and spice-vdagent masked
  network    with --mac, the guest's configured interface names pinned to the machine's
             NICs (NAME=MAC, or bare MACs in the order the guest configures names), and
             the VM's MACs inside those configurations (ifcfg HWADDR=, NetworkManager
             mac-address=, netplan/networkd match, ifupdown hwaddress) replaced by the
             machine's

REFUSED (nothing is written): a target that is mounted, holds a mounted partition, the
running system or a swap in use, is held by dm/md, is smaller than the source, or is not a
block device or regular file; a target with a partition table without --force.
Zero ranges of the source are skipped on a new file and zeroed (discard/zero-range) on a
device or existing file. The written disk is re-read and compared with the fixed source;
--grow then extends the last partition and its ext2/3/4 filesystem to the target's end.

EXAMPLES:
  ferry v2p --dry-run web01.qcow2 --to /dev/sdb
  ferry v2p web01.qcow2 --to /dev/sdb --force --grow --mac 3c:ec:ef:12:34:56
  ferry v2p db01.qcow2 --to /dev/nvme1n1 --mac ens192=3c:ec:ef:12:34:56 \\
            --mac ens224=3c:ec:ef:12:34:57
  ferry v2p web01.vmdk --to lab.raw

EXIT STATUS:
  0  success
  1  bad input: unreadable source, or no Linux root to fix (see --no-fixups)
  2  usage error
  3  the target was refused or could not be written
  4  the written disk differs from the source
  5  a fixup failed; nothing was written
130  interrupted";

#[derive(Debug, Args)]
pub struct V2pArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Block device or raw file to write (a missing file is created, sparse)
    #[arg(long, value_name = "/dev/sdY|FILE")]
    pub to: PathBuf,
    /// Overwrite a target that already has a partition table
    #[arg(long)]
    pub force: bool,
    /// Grow the last partition and its ext2/3/4 filesystem to the end of the target
    #[arg(long)]
    pub grow: bool,
    /// MAC of a physical NIC: NAME=MAC gives it the configured interface NAME, a bare MAC
    /// the next configured interface no NAME=MAC claims; repeatable
    #[arg(long, value_name = "[NAME=]MAC")]
    pub mac: Vec<String>,
    /// Write the disk as it is: no inspection, no fixups
    #[arg(long)]
    pub no_fixups: bool,
    /// Print the plan (fixups as diffs, bytes to write); write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    pub json: bool,
    /// Worker threads writing (default: all cores)
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// VM disk in any format ferry reads
    #[arg(value_name = "SOURCE")]
    pub src: PathBuf,
}

const P2V_HELP: &str = "\
WHAT IS READ:
  hardware   CPUs and topology (/sys/devices/system/cpu), memory (/proc/meminfo), firmware
             (UEFI when /sys/firmware/efi exists; secure boot from efivars), physical NICs
             with MACs and drivers (/sys/class/net), each disk's model and size
  disks      read-only, whole; with --used-only only the partition table area (boot loader
             gap included), the blocks each ext2/3/4 filesystem marks used, swap headers;
             filesystems ferry cannot read are copied whole and the report says so;
             free space and unpartitioned space become zero (deleted data is not copied)
Then as `ferry v2v`: fixups, conversion, verification against what was read, domain XML,
optional define/start. --dry-run prints the exact bytes it would copy.

Run it from a live system for a consistent image; on a running system ferry warns about
each mounted filesystem it images.

EXAMPLES:
  ferry p2v --dry-run --used-only --disk /dev/sda --out /mnt/nfs/p2v
  ferry p2v --used-only --disk /dev/nvme0n1 --disk /dev/sdb --out /mnt/nfs/p2v --name db01
  ferry p2v --used-only --disk sda.img --out out --define --connect qemu+ssh://kvm1/system

EXIT STATUS: as ferry v2v (see ferry v2v --help).";

const MIGRATE_HELP: &str = "\
PREFLIGHT (run before every move, and alone with --dry-run; each check names a fix):
  flags            combinations libvirt refuses (tunnelled + copy-storage or post-copy,
                   offline + copy-storage, offline without persistent)
  dest-reachable   the destination daemon answers and authenticates
  hypervisor       same hypervisor; destination libvirt and QEMU not older
  name-resolution  the destination's host name resolves here (else --migrate-uri)
  ports            TCP 49152-49215 on the destination reachable (else --tunnelled)
  storage          every disk at the same path on the destination (else --copy-storage)
  cache            disks with cache='none' (libvirt refuses others as unsafe)
  networks         the domain's networks and bridges exist on the destination
  cpu              the domain's CPU runs on the destination (libvirt's comparison)
  memory           the destination has the guest's memory free
  host-devices     passthrough devices and local media that cannot follow
  clock            clock skew between the hosts
  domain-state     live needs a running guest; offline a persistent one

CONVERGENCE: a pre-copy whose remaining memory stops shrinking for several iterations
switches to post-copy when --postcopy allows it (--auto-converge throttles the guest from
the start); at --timeout the --timeout-action applies. On any failure the guest keeps
running on the source, and the report says so.

EXAMPLES:
  ferry migrate --dry-run web01 --to qemu+ssh://kvm2/system
  ferry migrate web01 --to qemu+tcp://kvm2/system --migrate-uri tcp://10.0.0.2 --persistent --undefine-source
  ferry migrate db01 --to qemu+ssh://kvm2/system --copy-storage all --auto-converge --postcopy
  ferry migrate --offline web01 --to qemu+ssh://kvm2/system

EXIT STATUS:
  0  moved (or, with --dry-run, every check passed)
  2  usage error: the command line is wrong
  6  libvirt refused: no daemon at --connect, or no such domain
  7  a preflight check failed; nothing was moved
  8  the move failed or was aborted; the guest still runs on the source (see the message)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CopyStorageArg {
    /// Copy every disk whole
    All,
    /// Copy only the top layer of disks whose backing chain is shared
    Inc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeoutActionArg {
    /// Cancel the move; the guest keeps running on the source
    Abort,
    /// Switch to post-copy (needs --postcopy)
    Postcopy,
    /// Pause the guest until the rest of its memory is copied
    Suspend,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Destination libvirt URI (qemu+ssh://HOST/system, qemu+tcp://HOST/system, ...)
    #[arg(long, value_name = "DEST_URI")]
    pub to: String,
    /// Source libvirt URI
    #[arg(
        short = 'c',
        long,
        value_name = "SRC_URI",
        default_value = "qemu:///system"
    )]
    pub connect: String,
    /// Move the running guest (the default)
    #[arg(long, conflicts_with = "offline")]
    pub live: bool,
    /// Move only the persistent definition (the guest is not running or stays behind)
    #[arg(long)]
    pub offline: bool,
    /// Copy disks that are not on shared storage
    #[arg(long, value_enum, value_name = "all|inc")]
    pub copy_storage: Option<CopyStorageArg>,
    /// Allow switching to post-copy when pre-copy does not converge
    #[arg(long)]
    pub postcopy: bool,
    /// Throttle the guest's vCPUs when pre-copy does not converge
    #[arg(long)]
    pub auto_converge: bool,
    /// Peer-to-peer: the source daemon connects to the destination itself
    #[arg(long)]
    pub p2p: bool,
    /// Tunnel the data through the libvirt connection (implies --p2p)
    #[arg(long)]
    pub tunnelled: bool,
    /// Define the domain persistently on the destination
    #[arg(long)]
    pub persistent: bool,
    /// Undefine the domain on the source after a successful move
    #[arg(long)]
    pub undefine_source: bool,
    /// Compress memory pages on the wire
    #[arg(long)]
    pub compressed: bool,
    /// Longest pause allowed at the final switch-over
    #[arg(long, value_name = "MS")]
    pub max_downtime: Option<u64>,
    /// Bandwidth limit
    #[arg(long, value_name = "MIB_S")]
    pub bandwidth: Option<u64>,
    /// Address the destination QEMU listens on, when its host name does not resolve here
    #[arg(long, value_name = "tcp://HOST[:PORT]")]
    pub migrate_uri: Option<String>,
    /// Seconds before --timeout-action applies
    #[arg(long, value_name = "S")]
    pub timeout: Option<u64>,
    /// What happens at --timeout
    #[arg(long, value_enum, default_value = "abort", requires = "timeout")]
    pub timeout_action: TimeoutActionArg,
    /// Run the preflight checks only; move nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the preflight checks (flag combinations are still checked)
    #[arg(long, conflicts_with = "dry_run")]
    pub no_preflight: bool,
    /// Print JSON (progress events one per line, then the report) instead of text
    #[arg(long)]
    pub json: bool,
    /// The domain's name on the source
    pub domain: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VirtTypeArg {
    /// Hardware virtualization (/dev/kvm)
    Kvm,
    /// QEMU's TCG emulation (no /dev/kvm, nested hosts, CI)
    Qemu,
}

#[derive(Debug, Args)]
pub struct V2vArgs {
    #[command(flatten)]
    pub opts: MoveArgs,
    /// A .vmx, .ovf, .ova, Xen config or libvirt XML; or one or more disks
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct P2vArgs {
    /// A physical disk (/dev/sda, /dev/nvme0n1) or a raw dump of one; repeat for each disk,
    /// boot disk first
    #[arg(long, required = true, value_name = "DEV|FILE")]
    pub disk: Vec<PathBuf>,
    /// Copy only what the filesystems use: the partition table area, ext2/3/4 blocks marked
    /// used in their bitmaps, swap headers; other filesystems whole; free space as zero
    #[arg(long)]
    pub used_only: bool,
    #[command(flatten)]
    pub v2v: MoveArgs,
}

/// What `v2v` and `p2v` share: where the result goes and how it lands in libvirt.
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// Folder receiving the converted disks, NAME.xml and NAME.report.json (created if missing)
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out: PathBuf,
    /// Domain name (default: the source VM's name)
    #[arg(long)]
    pub name: Option<String>,
    /// Disk format written
    #[arg(
        short = 'O',
        long = "output-format",
        value_enum,
        default_value = "qcow2"
    )]
    pub output_format: OutputFormat,
    /// Connect NICs on source network SRC to TARGET (network:NAME, bridge:NAME, user); repeatable
    #[arg(long = "network-map", value_name = "SRC=TARGET")]
    pub network_map: Vec<String>,
    /// Where NICs not named by --network-map are connected
    #[arg(long, value_name = "TARGET", default_value = "network:default")]
    pub network: String,
    /// Define the domain in libvirt (persistent); never replaces an existing one
    #[arg(long)]
    pub define: bool,
    /// libvirt connection URI for --define
    #[arg(
        short = 'c',
        long,
        value_name = "URI",
        default_value = "qemu:///system"
    )]
    pub connect: String,
    /// Start the domain once defined (implies --define)
    #[arg(long)]
    pub start: bool,
    /// After --start, move the guest live to this libvirt URI (preflight first; the guest
    /// is made persistent there and undefined here)
    #[arg(long, value_name = "DEST_URI", requires = "start")]
    pub migrate_to: Option<String>,
    /// With --migrate-to: address the destination QEMU listens on (tcp://HOST[:PORT])
    #[arg(long, value_name = "tcp://HOST[:PORT]", requires = "migrate_to")]
    pub migrate_uri: Option<String>,
    /// With --migrate-to: copy the converted disks (--out is not shared with the destination)
    #[arg(long, requires = "migrate_to")]
    pub migrate_copy_storage: bool,
    /// Put the disks in this libvirt storage pool's folder instead of --out (dir pools)
    #[arg(long, value_name = "NAME")]
    pub pool: Option<String>,
    /// Domain type (default: kvm when the libvirt host offers it, else qemu)
    #[arg(long, value_enum)]
    pub virt_type: Option<VirtTypeArg>,
    /// Convert and describe only: no inspection, no fixups (data disks, appliances)
    #[arg(long)]
    pub no_fixups: bool,
    /// Skip re-reading each output to prove it equal to its source
    #[arg(long)]
    pub no_verify: bool,
    /// Print the plan (disks, bytes to copy, fixups as diffs, the domain XML); write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    pub json: bool,
    /// Worker threads shared by all disks (default: all cores)
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// KVM with virtio-blk disks and virtio-net NICs
    Kvm,
}

#[derive(Debug, Args)]
pub struct FixupArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Hypervisor the guest is fixed for
    #[arg(long, value_enum, default_value = "kvm")]
    pub target: TargetArg,
    /// Run every fixup on a throwaway overlay and print the changes as diffs; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    pub json: bool,
    /// Disk image (raw or qcow2) or block device holding the guest's root filesystem
    pub disk: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceFormat {
    Raw,
    Vmdk,
    Vhd,
    Qcow2,
    Bochs,
    Parallels,
    Cloop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Qcow2,
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressArg {
    Zlib,
    Zstd,
}

#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Source format; without it the format is probed from magic bytes
    #[arg(short = 'f', long = "source-format", value_enum)]
    pub source_format: Option<SourceFormat>,
    /// Read qcow2 backing files named inside the image (off by default: the name is image data)
    #[arg(long)]
    pub follow_backing: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format
    #[arg(
        short = 'O',
        long = "output-format",
        value_enum,
        default_value = "qcow2"
    )]
    pub output_format: OutputFormat,
    /// Compress qcow2 clusters (in parallel); zstd needs QEMU 5.1 or later to read
    #[arg(short = 'c', long, value_enum)]
    pub compress: Option<CompressArg>,
    /// Compression level (zlib 1-9, default 6; zstd 1-19, default 3)
    #[arg(long, requires = "compress")]
    pub compress_level: Option<i32>,
    /// qcow2 cluster size, a power of two from 512 to 2M (suffixes K, M)
    #[arg(long, default_value = "64K", value_parser = units::parse_size)]
    pub cluster_size: u64,
    /// Worker threads reading, zero-detecting and compressing (default: all cores)
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Re-read the output and prove it equal to the source, extent by extent
    #[arg(long)]
    pub verify: bool,
    /// Print the plan (formats, sizes, bytes to copy) and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    pub json: bool,
    /// Source disk image or block device
    pub src: PathBuf,
    /// Output file (or block device with -O raw)
    pub dst: PathBuf,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print JSON on stdout instead of text
    #[arg(long)]
    pub json: bool,
    /// Disk image or block device
    pub src: PathBuf,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print JSON on stdout instead of text
    #[arg(long)]
    pub json: bool,
    /// Disk images or block devices of one machine
    #[arg(required = true)]
    pub disks: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder to build the sample in (default: a new folder under the system temp dir)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON on stdout instead of text
    #[arg(long)]
    pub json: bool,
}

impl SourceArgs {
    pub fn format(&self) -> Option<converters::Format> {
        self.source_format.map(|f| match f {
            SourceFormat::Raw => converters::Format::Raw,
            SourceFormat::Vmdk => converters::Format::Vmdk,
            SourceFormat::Vhd => converters::Format::Vhd,
            SourceFormat::Qcow2 => converters::Format::Qcow2,
            SourceFormat::Bochs => converters::Format::Bochs,
            SourceFormat::Parallels => converters::Format::Parallels,
            SourceFormat::Cloop => converters::Format::Cloop,
        })
    }

    pub fn open_options(&self) -> converters::OpenOptions {
        converters::OpenOptions {
            follow_backing: self.follow_backing,
        }
    }

    /// Opens the source read-only; every failure here is bad input (exit 1).
    pub fn open(&self, path: &std::path::Path) -> CliResult<Box<dyn converters::DiskSource>> {
        converters::open(path, self.format(), &self.open_options())
            .map_err(|e| Failure::new(Exit::BadInput, e))
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Convert(args) => convert::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Fixup(args) => fixup::run(&args),
        Command::V2v(args) => v2v::run(&args),
        Command::Migrate(args) => migrate::run(&args),
        Command::P2v(args) => p2v::run(&args),
        Command::V2p(args) => v2p::run(&args),
        Command::Wave(args) => wave::run(&args),
        Command::Demo(args) => demo::run(&args),
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> CliResult {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| Failure::new(Exit::OutputFailed, e))?;
    println!("{text}");
    Ok(())
}
