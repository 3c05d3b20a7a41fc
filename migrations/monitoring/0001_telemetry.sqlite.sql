-- Job telemetry history (modules/monitoring/README.md "Telemetry"): one row per job per
-- history_step, downsampled from the about-once-a-second samples. Times are Unix epoch
-- milliseconds (the start of the step); memory in bytes; CPU in cores; GPU duty cycle in
-- percent (the mean over the job's GPUs), GPU memory in bytes (the sum). Rows older than
-- modules.monitoring.history_retention are deleted.
CREATE TABLE job_telemetry (
  job_id TEXT NOT NULL,
  time BIGINT NOT NULL,
  step_ms BIGINT NOT NULL,
  samples INTEGER NOT NULL,
  cpu_avg DOUBLE PRECISION NOT NULL,
  cpu_max DOUBLE PRECISION NOT NULL,
  memory_avg BIGINT NOT NULL,
  memory_max BIGINT NOT NULL,
  gpu_duty_cycle_avg DOUBLE PRECISION,
  gpu_duty_cycle_max DOUBLE PRECISION,
  gpu_memory_max BIGINT,
  PRIMARY KEY (job_id, time)
);
CREATE INDEX job_telemetry_time ON job_telemetry (time);
