//! The suite's Slurm test, against a real Slurm: a single-node cluster from Debian's packages
//! (`slurmctld`, `slurmd`, `munge`) with its own key, socket, ports, state and logs in a
//! temporary directory. It checks that `--submit` refuses an array no node can hold, submits
//! the `smoke` plan by name as a job array, cancels one task mid-run with `scancel
//! --signal=TERM` and requeues it, waits for the array, and checks that every run directory
//! equals the one a local sweep of the plan's file writes (log rows but the wall-clock time,
//! and every checkpoint tensor, the final parameters included, byte for byte). A task with a
//! one-minute limit is warned (SIGUSR1), checkpoints, requeues itself and completes.
//! Then it submits the same plan without its data and checks that every task FAILED with exit
//! status 4, saying what is missing. Every daemon it started is stopped by its pid, also when
//! the test fails.

use crate::env::{ensure_apt, output, root, step};
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's packages for the cluster.
const APT_PACKAGES: [&str; 2] = ["slurm-wlm", "munge"];
/// Ports of this test's slurmctld and slurmd (not Slurm's defaults, so a real cluster's
/// daemons on this machine are left alone).
const PORTS: (u16, u16) = (16817, 16818);

/// The daemons started, stopped by pid (SIGTERM, then SIGKILL) when dropped; and the job, which
/// is cancelled first so no task outlives the test.
struct Cluster {
    dir: PathBuf,
    daemons: Vec<(&'static str, Child)>,
    job: Option<String>,
}

impl Cluster {
    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }

    /// A Slurm client command (`sbatch`, `squeue`, …) talking to this cluster.
    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }

    fn start(&mut self, name: &'static str, cmd: &mut Command) -> Result<()> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.out")))?;
        let child = cmd
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.daemons.push((name, child));
        Ok(())
    }
}

impl Cluster {
    /// Waits until `job` has left the queue (every task ended), then forgets it.
    fn wait_gone(&mut self, job: &str, what: &str, timeout: Duration) -> Result<()> {
        wait_for(what, timeout, || {
            Ok(output(self.client("squeue").args(["-h", "-j", job]))?
                .trim()
                .is_empty())
        })?;
        self.job = None;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(job) = &self.job {
            let _ = self.client("scancel").arg(job).status();
            // Let the job's steps report their end, or they wait for slurmctld forever.
            let _ = wait_for("the job to end", Duration::from_secs(20), || {
                Ok(output(self.client("squeue").args(["-h", "-j", job]))
                    .map_or(true, |s| s.trim().is_empty()))
            });
        }
        // Stop in reverse order of start: slurmd, slurmctld, munged.
        while let Some((name, mut child)) = self.daemons.pop() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    _ => {
                        eprintln!("{name} (pid {pid}) did not stop on SIGTERM: killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        // Job step daemons (slurmstepd) detach from slurmd; they inherit its environment, so
        // the marker set on slurmd finds exactly this test's ones.
        for pid in marked_processes(&self.dir) {
            eprintln!("stopping slurmstepd (pid {pid}) left by the test");
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// The environment variable that marks the processes of this test's slurmd.
const MARKER: &str = "HD_SLURM_TEST";

/// Pids of the processes whose environment holds `MARKER=dir`.
fn marked_processes(dir: &Path) -> Vec<u32> {
    let want = format!("{MARKER}={}", dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == want.as_bytes()))
        })
        .collect()
}

fn slurm_conf(dir: &Path) -> Result<String> {
    let host = output(Command::new("hostname").arg("-s"))?
        .trim()
        .to_string();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("/proc/meminfo")?;
    let total_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("MemTotal in /proc/meminfo")?;
    // Below the machine's memory, or slurmd reports the node unfit.
    let mem_mib = total_kib / 1024 * 9 / 10;
    let d = dir.display();
    Ok(format!(
        "ClusterName=hdtest
SlurmctldHost={host}
SlurmctldPort={}
SlurmdPort={}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.sock
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobRequeue=1
SchedulerParameters=sched_interval=1,bf_interval=1
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
NodeName={host} CPUs={cpus} RealMemory={mem_mib} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
",
        PORTS.0, PORTS.1
    ))
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !ready()? {
        if Instant::now() > deadline {
            bail!("timed out after {} s waiting for {what}", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The tensors of a safetensors file by name (raw bytes with dtype and shape), without the
/// wall-clock `run.elapsed`.
fn tensors(path: &Path) -> Result<BTreeMap<String, (String, Vec<u8>)>> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let n = u64::from_le_bytes(bytes.get(..8).context("short file")?.try_into()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8 + n).context("header")?)?;
    let data = &bytes[8 + n..];
    let mut out = BTreeMap::new();
    for (name, t) in header.as_object().context("header is not an object")? {
        if name == "__metadata__" || name == "run.elapsed" {
            continue;
        }
        let off = &t["data_offsets"];
        let (a, b) = (
            off[0].as_u64().context("offset")? as usize,
            off[1].as_u64().context("offset")? as usize,
        );
        let kind = format!("{} {}", t["dtype"], t["shape"]);
        out.insert(
            name.clone(),
            (kind, data.get(a..b).context("data")?.to_vec()),
        );
    }
    Ok(out)
}

/// `log.csv` without the wall-clock Time column.
fn log_rows(path: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| path.display().to_string())?
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            if f.len() > 2 {
                f[2] = "";
            }
            f.join(",")
        })
        .collect())
}

fn same_run(local: &Path, slurm: &Path) -> Result<()> {
    ensure!(
        log_rows(&local.join("log.csv"))? == log_rows(&slurm.join("log.csv"))?,
        "{}: log.csv differs from the local sweep's",
        slurm.display()
    );
    let (a, b) = (
        tensors(&local.join("checkpoint.safetensors"))?,
        tensors(&slurm.join("checkpoint.safetensors"))?,
    );
    ensure!(
        a.keys().collect::<Vec<_>>() == b.keys().collect::<Vec<_>>(),
        "{}: the checkpoints hold different tensors",
        slurm.display()
    );
    for (name, t) in &a {
        ensure!(
            &b[name] == t,
            "{}: checkpoint tensor {name} differs from the local sweep's",
            slurm.display()
        );
    }
    Ok(())
}

fn squeue_state(c: &Cluster, task: &str) -> Result<String> {
    Ok(output(
        c.client("squeue")
            .args(["-h", "-o", "%T", "-j", task])
            .stderr(Stdio::null()),
    )
    .unwrap_or_default()
    .trim()
    .to_string())
}

/// The job id in what `sweep --slurm --submit` printed.
fn job_id(submitted: &str) -> Result<String> {
    Ok(submitted
        .lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .with_context(|| format!("no job id in: {submitted}"))?
        .trim()
        .to_string())
}

/// A task warned before its time limit requeues itself: one run with `--time 1`, inside the
/// script's two-minute warning from its start, so slurmctld sends SIGUSR1 at its first check of
/// the running job (its checks are about 30 s apart); the run checkpoints, the task requeues
/// itself (`Restarts=1`), and, given back a long limit (the cut one would warn it again at
/// once), the requeued task resumes the run to its end. The run is the paper's MLP on one
/// thread, 10 epochs of several seconds each: it must outlast that first check on any machine
/// (a LogReg run of 40 epochs took 10 s on an idle one, and ended before it was warned).
fn time_limit(cluster: &mut Cluster, hd_native: &Path, dir: &Path, data: &str) -> Result<()> {
    step("Slurm: a task warned before its time limit requeues itself and completes");
    let plan = dir.join("long.toml");
    std::fs::write(
        &plan,
        "description = \"one run that outlasts the warning\"\n\
         [[experiment]]\nname = \"long\"\nmodel = \"mlp\"\ndataset = \"fashion-mnist\"\n\
         epochs = 10\noptimizer = [\"sgd-hd\"]\n",
    )?;
    let out = dir.join("long");
    let submitted = output(
        cluster
            .client(&hd_native.to_string_lossy())
            .arg("sweep")
            .arg(&plan)
            .arg("--out")
            .arg(&out)
            .args([
                "--slurm",
                "--submit",
                "--cpus-per-run",
                "1",
                "--mem-per-run",
                "1G",
                "--time",
                "1",
                "--data",
                data,
            ]),
    )?;
    let job = job_id(&submitted)?;
    cluster.job = Some(job.clone());
    let task = format!("{job}_0");
    wait_for(
        "the task to requeue itself",
        Duration::from_secs(300),
        || {
            Ok(output(
                cluster
                    .client("scontrol")
                    .args(["-o", "show", "job", &task]),
            )
            .unwrap_or_default()
            .contains(" Restarts=1 "))
        },
    )?;
    output(cluster.client("scontrol").args([
        "update",
        &format!("JobId={task}"),
        "TimeLimit=60",
        "StartTime=now",
    ]))?;
    cluster.wait_gone(
        &job,
        "the requeued task to finish",
        Duration::from_secs(900),
    )?;
    let status = output(Command::new(hd_native).args(["sweep", "status"]).arg(&out))?;
    ensure!(
        status
            .lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("done")),
        "the requeued run did not finish:\n{status}"
    );
    let task_out = std::fs::read_to_string(out.join(format!(".sweep/slurm/{job}_0.out")))?;
    ensure!(
        task_out.contains("task 0 (long/sgd-hd) stopped before its time limit and requeued itself")
            && task_out.contains("done      long/sgd-hd"),
        "the task's output does not show it requeued itself and resumed:\n{task_out}"
    );
    Ok(())
}

/// `cargo xtask test`'s Slurm part (run as root; otherwise it prints what to install).
///
/// # Errors
/// A daemon that does not start, a job that fails, or a run directory that differs.
pub fn test(hd_native: &Path, fashion: &Path) -> Result<()> {
    if output(Command::new("id").arg("-u"))?.trim() != "0" {
        bail!("the Slurm test runs slurmd, which runs jobs as their users: run it as root");
    }
    ensure_apt(&APT_PACKAGES)?;
    let plan = root().join("hd-native/plans/smoke.toml");
    let dir = std::env::temp_dir().join(format!("hd-slurm-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["state", "spool"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    // munged checks that every directory above its socket lets others through.
    output(Command::new("chmod").arg("711").arg(&dir))?;
    let key = dir.join("munge.key");
    let mut bytes = vec![0u8; 1024];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    }
    std::fs::write(&key, &bytes)?;
    output(Command::new("chmod").arg("400").arg(&key))?;
    let mut cluster = Cluster {
        dir: dir.clone(),
        daemons: Vec::new(),
        job: None,
    };
    std::fs::write(cluster.conf(), slurm_conf(&dir)?)?;

    step("Slurm: munged, slurmctld and slurmd (single node, temporary config)");
    let d = |f: &str| dir.join(f);
    cluster.start(
        "munged",
        Command::new("munged")
            .args(["-F", "--force", "-S"])
            .arg(d("munge.sock"))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--pid-file={}", d("munged.pid").display()))
            .arg(format!("--log-file={}", d("munged.log").display()))
            .arg(format!("--seed-file={}", d("munged.seed").display())),
    )?;
    wait_for("munged's socket", Duration::from_secs(20), || {
        Ok(d("munge.sock").exists())
    })?;
    let conf = cluster.conf();
    cluster.start(
        "slurmctld",
        Command::new("slurmctld")
            .args(["-D", "-i", "-f"])
            .arg(&conf),
    )?;
    cluster.start(
        "slurmd",
        Command::new("slurmd")
            .args(["-D", "-f"])
            .arg(&conf)
            .env(MARKER, &dir),
    )?;
    wait_for("the node to be idle", Duration::from_secs(60), || {
        Ok(output(
            cluster
                .client("sinfo")
                .args(["-h", "-o", "%T"])
                .stderr(Stdio::null()),
        )
        .unwrap_or_default()
        .trim()
            == "idle")
    })?;

    let data = format!("fashion-mnist={}", fashion.display());
    step("Slurm: the smoke plan swept locally, for reference");
    let local = dir.join("local");
    crate::env::exec(
        Command::new(hd_native)
            .arg("sweep")
            .arg(&plan)
            .arg("--out")
            .arg(&local)
            .args(["--devices", "cpu", "--threads", "1", "--data", &data]),
    )?;

    step("Slurm: an array no node can hold is refused at --submit");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let too_big = dir.join("too-big");
    let refused = cluster
        .client(&hd_native.to_string_lossy())
        .arg("sweep")
        .arg("smoke")
        .arg("--out")
        .arg(&too_big)
        .args([
            "--slurm",
            "--submit",
            "--cpus-per-run",
            &(cpus + 1).to_string(),
        ])
        .args(["--data", &data])
        .output()?;
    let said = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success()
            && said.contains(&format!(
                "no node of Slurm partition debug can hold one run: none has {} CPUs",
                cpus + 1
            ))
            && !too_big.join(".sweep/sweep.sbatch").exists(),
        "a run asking more CPUs than the node has was not refused at --submit:\n{said}"
    );

    step("Slurm: the smoke plan, by name, as a job array");
    // A space and a `#` in --out: quoted for bash and for sbatch's reading of `#SBATCH`
    // lines, or sbatch refuses the script or writes the task logs elsewhere.
    let out = dir.join("slurm out#1");
    // `--submit` runs sbatch itself (SLURM_CONF points it at this cluster). The plan shipped in
    // the binary, where the local sweep read its file: the tasks read the copy the sweep saved.
    let submitted = output(
        cluster
            .client(&hd_native.to_string_lossy())
            .arg("sweep")
            .arg("smoke")
            .arg("--out")
            .arg(&out)
            .args([
                "--slurm",
                "--submit",
                "--cpus-per-run",
                "1",
                // Below any CI machine's memory (the default, 8G, may not be).
                "--mem-per-run",
                "1G",
                "--setup",
                "export HD_SETUP_MARK=ran",
                "--setup",
                "echo \"setup: $HD_SETUP_MARK\"",
                "--data",
                &data,
            ]),
    )?;
    ensure!(
        submitted.contains("setup: export HD_SETUP_MARK=ran"),
        "sweep --slurm did not show its --setup lines:\n{submitted}"
    );
    let job = job_id(&submitted)?;
    cluster.job = Some(job.clone());
    // Task 1 (SGD-HD): cancelled with SIGTERM once its first epoch is checkpointed and its
    // second under way, then requeued.
    let task = format!("{job}_1");
    let run1 = out.join("logreg-fashion/sgd-hd");
    wait_for("task 1's second epoch", Duration::from_secs(300), || {
        Ok(std::fs::read_to_string(run1.join("log.csv"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("2,")))
    })?;
    // The task's own job id: signalling an array task by `job_task` can be refused while
    // other tasks of the array are pending.
    let task_job = output(
        cluster
            .client("squeue")
            .args(["-h", "-o", "%A", "-j", &task]),
    )?
    .trim()
    .to_string();
    // Slurm 22.05's scancel can exit non-zero ("Job can not be altered now") although the
    // signal is delivered: judge by the task, which must stop, and retry if it does not.
    let mut stopped = false;
    for _ in 0..3 {
        let _ = cluster
            .client("scancel")
            .args(["--signal=TERM", "--batch", &task_job])
            .status();
        stopped = wait_for("task 1 to stop", Duration::from_secs(20), || {
            Ok(!matches!(
                squeue_state(&cluster, &task)?.as_str(),
                "RUNNING" | "COMPLETING"
            ))
        })
        .is_ok();
        if stopped {
            break;
        }
    }
    ensure!(stopped, "task 1 did not stop on scancel --signal=TERM");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run1.join("summary.json"))?)?;
    ensure!(
        summary["finished"] == false,
        "task 1 finished before SIGTERM reached it; nothing was interrupted"
    );
    ensure!(
        run1.join("checkpoint.safetensors").is_file(),
        "task 1 left no checkpoint"
    );
    output(cluster.client("scontrol").args(["requeue", &task]))?;
    // Slurm delays a requeued job's start (Reason=BeginTime); start it now.
    output(
        cluster
            .client("scontrol")
            .args(["update", &format!("JobId={task}"), "StartTime=now"]),
    )?;
    cluster.wait_gone(&job, "the array to finish", Duration::from_secs(600))?;

    step("Slurm: every run directory equals the local sweep's");
    let status = output(Command::new(hd_native).args(["sweep", "status"]).arg(&out))?;
    for line in status.lines().skip(1) {
        ensure!(
            line.split_whitespace().nth(1) == Some("done"),
            "not done on Slurm: {line}\n{status}"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(".sweep/manifest.json"))?)?;
    let ids: Vec<&str> = manifest["runs"]
        .as_array()
        .context("manifest runs")?
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    ensure!(
        ids.len() == 4,
        "the smoke plan has 4 runs, the manifest {}",
        ids.len()
    );
    for id in &ids {
        same_run(&local.join(id), &out.join(id))?;
    }
    // The requeued task wrote to the same output file twice (append mode), and resumed.
    let task_out = std::fs::read_to_string(out.join(format!(".sweep/slurm/{job}_1.out")))?;
    ensure!(
        task_out.contains("setup: ran\n")
            && task_out.contains("stopped   logreg-fashion/sgd-hd (resumable)")
            && task_out.contains("done      logreg-fashion/sgd-hd"),
        "task 1's output does not show its --setup lines, the stop and the resumed run:\n{task_out}"
    );

    time_limit(&mut cluster, hd_native, &dir, &data)?;

    step("Slurm: the smoke plan without its data: every task fails");
    let nodata = dir.join("nodata");
    let submitted = output(
        cluster
            .client(&hd_native.to_string_lossy())
            .arg("sweep")
            .arg("smoke")
            .arg("--out")
            .arg(&nodata)
            .arg("--data-root")
            .arg(dir.join("no-such-data"))
            // Without it the sweep refuses to write an array whose tasks must fail.
            .args([
                "--slurm",
                "--submit",
                "--allow-missing",
                "--cpus-per-run",
                "1",
                "--mem-per-run",
                "1G",
            ]),
    )?;
    let job = job_id(&submitted)?;
    cluster.job = Some(job.clone());
    cluster.wait_gone(
        &job,
        "the array without data to finish",
        Duration::from_secs(300),
    )?;
    // Finished jobs stay in slurmctld's memory for MinJobAge (300 s by default): one line each.
    let records = output(cluster.client("scontrol").args(["-o", "show", "job", &job]))?;
    let states: Vec<(&str, &str)> = records
        .lines()
        .filter_map(|l| {
            let field = |k: &str| l.split_whitespace().find_map(|w| w.strip_prefix(k));
            Some((field("JobState=")?, field("ExitCode=")?))
        })
        .collect();
    ensure!(
        states.len() == ids.len() && states.iter().all(|s| *s == ("FAILED", "4:0")),
        "the tasks without data did not all fail with exit status 4: {states:?}\n{records}"
    );
    let task_out = std::fs::read_to_string(nodata.join(format!(".sweep/slurm/{job}_0.out")))?;
    ensure!(
        task_out.contains("MISSING   logreg-fashion/sgd: missing data (")
            && task_out.contains("hd-native: error: task 0 (logreg-fashion/sgd): missing data ("),
        "task 0's output does not say its data are missing:\n{task_out}"
    );

    println!(
        "Slurm: {} runs on a real single-node cluster equal the local sweep, task 1 stopped by SIGTERM and requeued, a task warned before its time limit requeued itself; an array no node holds refused; without data every task failed (exit 4)",
        ids.len()
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
