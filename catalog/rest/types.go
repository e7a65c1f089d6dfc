package rest

import "time"

// The answers of the /v1 API, as JSON. Nullable fields are pointers; times
// are UTC RFC 3339; LSNs are integers (lsn_text gives PostgreSQL's X/Y form).

// Source is one PostgreSQL source.
type Source struct {
	Name        string    `json:"name"`
	Slot        string    `json:"slot"`
	Publication string    `json:"publication"`
	Watermark   Watermark `json:"watermark"`
	// CompleteThrough: every transaction committed before it is in the lake.
	CompleteThrough *time.Time `json:"complete_through"`
	// LagSeconds is now - CompleteThrough.
	LagSeconds   *float64 `json:"lag_seconds"`
	SlotLagBytes *int64   `json:"slot_lag_bytes"`
	// State is "snapshotting", "active" (watermark written in the last
	// ActiveWindow), "inactive", or what SourceStatus reports.
	State    string            `json:"state"`
	Snapshot *SnapshotProgress `json:"snapshot"`
}

// Watermark is a source's committed position.
type Watermark struct {
	LSN        uint64     `json:"lsn"`
	LSNText    string     `json:"lsn_text"`
	CommitTime *time.Time `json:"commit_time"`
	UpdatedAt  *time.Time `json:"updated_at"`
}

// SnapshotProgress is the state of a source's initial copies of existing rows.
type SnapshotProgress struct {
	// State is "running" while any table copies, else "done".
	State  string          `json:"state"`
	Tables []TableSnapshot `json:"tables"`
}

// TableSnapshot is one table's copy.
type TableSnapshot struct {
	Schema     string    `json:"schema"`
	Table      string    `json:"table"`
	State      string    `json:"state"` // running, done, or dropped (the table no longer exists)
	Rows       int64     `json:"rows"`
	Bytes      int64     `json:"bytes"`
	TotalBytes int64     `json:"total_bytes"`
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Table is one source table: its changelog and, once compacted, its
// snapshot (current state) table.
type Table struct {
	Source string `json:"source"`
	Schema string `json:"schema"`
	Name   string `json:"name"`
	// Path is the table's API path (names percent-encoded).
	Path string `json:"path"`
	// Rows is the row count of the snapshot table's current snapshot.
	Rows *int64 `json:"rows"`
	// SnapshotLSN is the snapshot table's watermark.
	SnapshotLSN *uint64 `json:"snapshot_lsn"`
	// LastChange is the changelog's last append.
	LastChange *Change `json:"last_change"`
	// SchemaVersion is the changelog's current Iceberg schema id.
	SchemaVersion int           `json:"schema_version"`
	PrimaryKey    []string      `json:"primary_key"`
	Changelog     *IcebergTable `json:"changelog"`
	Snapshot      *IcebergTable `json:"snapshot"`
}

// Change is when the lake last received changes of a table.
type Change struct {
	// Time is when cdclake committed them to the lake.
	Time time.Time `json:"time"`
	// LSN is the source watermark of that commit.
	LSN        *uint64 `json:"lsn"`
	SnapshotID int64   `json:"snapshot_id"`
}

// IcebergTable describes one Iceberg table of the lake.
type IcebergTable struct {
	Identifier       []string  `json:"identifier"`
	Location         string    `json:"location"`
	MetadataLocation string    `json:"metadata_location"`
	SnapshotID       *int64    `json:"snapshot_id"`
	Rows             int64     `json:"rows"`
	Files            int64     `json:"files"`
	Bytes            int64     `json:"bytes"`
	SourceLSN        *uint64   `json:"source_lsn"`
	SchemaID         int       `json:"schema_id"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Schema is a changelog's current schema and its history.
type Schema struct {
	Source   string          `json:"source"`
	Schema   string          `json:"schema"`
	Table    string          `json:"table"`
	SchemaID int             `json:"schema_id"`
	Columns  []Column        `json:"columns"`
	History  []SchemaVersion `json:"history"`
}

// Column is one column of a changelog schema.
type Column struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	// SourceName is the PostgreSQL column (null for cdclake's _cdc_ columns).
	SourceName *string `json:"source_name"`
	// PGType is the PostgreSQL type: recorded by ingest in the table
	// property cdclake.pg-types, or inferred from the lake type
	// (PGTypeInferred). Null for _cdc_ columns.
	PGType         *string `json:"pg_type"`
	PGTypeInferred bool    `json:"pg_type_inferred"`
	LakeType       string  `json:"lake_type"`
	Required       bool    `json:"required"`
	CDC            bool    `json:"cdc"`
}

// SchemaVersion is one schema the changelog has had.
type SchemaVersion struct {
	SchemaID int  `json:"schema_id"`
	Current  bool `json:"current"`
	// Since is the time of the oldest retained snapshot written with it.
	Since    *time.Time `json:"since"`
	SinceLSN *uint64    `json:"since_lsn"`
	// Changes lists what changed from the previous version.
	Changes []string `json:"changes"`
	Columns []Column `json:"columns"`
}

// Snapshot is one Iceberg snapshot of a table.
type Snapshot struct {
	ID             int64     `json:"id"`
	ParentID       *int64    `json:"parent_id"`
	SequenceNumber int64     `json:"sequence_number"`
	Time           time.Time `json:"time"`
	Operation      string    `json:"operation"`
	// WatermarkLSN is the source LSN the snapshot is complete up to.
	WatermarkLSN *uint64 `json:"watermark_lsn"`
	Files        *int64  `json:"files"`
	Rows         *int64  `json:"rows"`
	AddedFiles   *int64  `json:"added_files"`
	AddedRows    *int64  `json:"added_rows"`
	SchemaID     *int    `json:"schema_id"`
	Current      bool    `json:"current"`
}

// Partition is one hour partition of a changelog.
type Partition struct {
	// Hour is the partition's start; End is Hour + 1h.
	Hour time.Time `json:"hour"`
	End  time.Time `json:"end"`
	// Closed: no row will be added (see docs/warehouse-pull.md).
	Closed bool `json:"closed"`
	// ClosesAt is the time the table must be complete through to close it.
	ClosesAt time.Time `json:"closes_at"`
	Files    int       `json:"files"`
	Rows     int64     `json:"rows"`
	Bytes    int64     `json:"bytes"`
	MinLSN   *uint64   `json:"min_lsn"`
	MaxLSN   *uint64   `json:"max_lsn"`
	// Version is the highest sequence number of the partition's files: it
	// grows whenever the file set changes (new rows, or compaction).
	Version int64 `json:"version"`
	// SnapshotID is the Iceberg snapshot that wrote that file.
	SnapshotID int64 `json:"snapshot_id"`
	// Manifest is the API path of the partition's file manifest.
	Manifest string `json:"manifest"`
}

// Manifest is the file list of one partition.
type Manifest struct {
	Source string `json:"source"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	// The partition's facts, as in Partition.
	Hour       time.Time `json:"hour"`
	End        time.Time `json:"end"`
	Closed     bool      `json:"closed"`
	ClosesAt   time.Time `json:"closes_at"`
	Rows       int64     `json:"rows"`
	Bytes      int64     `json:"bytes"`
	MinLSN     *uint64   `json:"min_lsn"`
	MaxLSN     *uint64   `json:"max_lsn"`
	Version    int64     `json:"version"`
	SnapshotID int64     `json:"snapshot_id"`
	// Checksum names the algorithm of File.Checksum: "sha256" of the
	// object's bytes, computed by the server.
	Checksum string `json:"checksum"`
	Files    []File `json:"files"`
}

// File is one data file of a partition.
type File struct {
	// URL is the file's location as Iceberg records it.
	URL string `json:"url"`
	// Key is the object key under the lake root (null if the file is not
	// under it); Download is the API path serving it.
	Key      *string `json:"key"`
	Download *string `json:"download"`
	Bytes    int64   `json:"bytes"`
	Rows     int64   `json:"rows"`
	MinLSN   *uint64 `json:"min_lsn"`
	MaxLSN   *uint64 `json:"max_lsn"`
	// Checksum is the hex SHA-256 of the object (null without a lake bucket).
	Checksum       *string `json:"checksum"`
	SnapshotID     int64   `json:"snapshot_id"`
	SequenceNumber int64   `json:"sequence_number"`
}
