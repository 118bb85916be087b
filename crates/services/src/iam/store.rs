//! IAM roles and their inline policies in SQLite. IAM names are unique without regard to
//! case, so rows are keyed by the lower-cased name and keep the name as created.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::db::Db;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS iam_roles (
    name_lower TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role_id TEXT NOT NULL,
    path TEXT NOT NULL,
    arn TEXT NOT NULL,
    create_date TEXT NOT NULL,
    trust_policy TEXT NOT NULL,
    description TEXT,
    max_session_duration INTEGER NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS iam_role_policies (
    role_lower TEXT NOT NULL REFERENCES iam_roles(name_lower) ON DELETE CASCADE,
    policy_lower TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (role_lower, policy_lower)
);
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub role_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: DateTime<Utc>,
    pub trust_policy: String,
    pub description: Option<String>,
    pub max_session_duration: i64,
    pub tags: Vec<(String, String)>,
}

fn row_to_role(row: &rusqlite::Row<'_>) -> rusqlite::Result<Role> {
    let create_date: String = row.get("create_date")?;
    let tags: String = row.get("tags")?;
    Ok(Role {
        name: row.get("name")?,
        role_id: row.get("role_id")?,
        path: row.get("path")?,
        arn: row.get("arn")?,
        create_date: DateTime::parse_from_rfc3339(&create_date)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default(),
        trust_policy: row.get("trust_policy")?,
        description: row.get("description")?,
        max_session_duration: row.get("max_session_duration")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
    })
}

fn select_role(conn: &Connection, name: &str) -> rusqlite::Result<Option<Role>> {
    conn.query_row(
        "SELECT * FROM iam_roles WHERE name_lower = ?1",
        [name.to_lowercase()],
        row_to_role,
    )
    .optional()
}

/// `(policy name, document)` of every inline policy of `role`, by name.
fn select_policies(conn: &Connection, role: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt =
        conn.prepare("SELECT policy_name, document FROM iam_role_policies WHERE role_lower = ?1 ORDER BY policy_lower")?;
    let rows = stmt.query_map([role.to_lowercase()], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn role_exists(conn: &Connection, lower: &str) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM iam_roles WHERE name_lower = ?1",
        [lower],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

pub async fn get_role(db: &Db, name: &str) -> rusqlite::Result<Option<Role>> {
    let name = name.to_string();
    db.read(move |c| select_role(c, &name)).await
}

/// Inserts `role`; `false` if a role with that name exists.
pub async fn insert_role(db: &Db, role: &Role) -> rusqlite::Result<bool> {
    let role = role.clone();
    db.write(move |tx| {
        let n = tx.execute(
            "INSERT OR IGNORE INTO iam_roles (name_lower, name, role_id, path, arn, create_date, trust_policy, description, max_session_duration, tags)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                role.name.to_lowercase(),
                role.name,
                role.role_id,
                role.path,
                role.arn,
                role.create_date.to_rfc3339(),
                role.trust_policy,
                role.description,
                role.max_session_duration,
                serde_json::to_string(&role.tags).unwrap_or_else(|_| "[]".into()),
            ],
        )?;
        Ok(n == 1)
    })
    .await
}

/// All roles whose path starts with `path_prefix`, by name.
pub async fn list_roles(db: &Db, path_prefix: &str) -> rusqlite::Result<Vec<Role>> {
    let path_prefix = path_prefix.to_string();
    let roles = db
        .read(|c| {
            let mut stmt = c.prepare("SELECT * FROM iam_roles ORDER BY name_lower")?;
            let rows = stmt.query_map([], row_to_role)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await?;
    Ok(roles
        .into_iter()
        .filter(|r| r.path.starts_with(&path_prefix))
        .collect())
}

pub enum DeleteRole {
    Deleted,
    NotFound,
    HasPolicies,
}

pub async fn delete_role(db: &Db, name: &str) -> rusqlite::Result<DeleteRole> {
    let lower = name.to_lowercase();
    db.write(move |tx| {
        if !role_exists(tx, &lower)? {
            return Ok(DeleteRole::NotFound);
        }
        let policies: i64 = tx.query_row(
            "SELECT COUNT(*) FROM iam_role_policies WHERE role_lower = ?1",
            [&lower],
            |r| r.get(0),
        )?;
        if policies > 0 {
            return Ok(DeleteRole::HasPolicies);
        }
        tx.execute("DELETE FROM iam_roles WHERE name_lower = ?1", [&lower])?;
        Ok(DeleteRole::Deleted)
    })
    .await
}

/// `false` if the role does not exist.
pub async fn update_trust_policy(db: &Db, name: &str, document: &str) -> rusqlite::Result<bool> {
    let (lower, document) = (name.to_lowercase(), document.to_string());
    db.write(move |tx| {
        let n = tx.execute(
            "UPDATE iam_roles SET trust_policy = ?2 WHERE name_lower = ?1",
            params![lower, document],
        )?;
        Ok(n == 1)
    })
    .await
}

/// Creates or replaces the inline policy; `false` if the role does not exist.
pub async fn put_role_policy(
    db: &Db,
    role: &str,
    policy: &str,
    document: &str,
) -> rusqlite::Result<bool> {
    let (lower, policy, document) = (
        role.to_lowercase(),
        policy.to_string(),
        document.to_string(),
    );
    db.write(move |tx| {
        if !role_exists(tx, &lower)? {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO iam_role_policies (role_lower, policy_lower, policy_name, document) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (role_lower, policy_lower) DO UPDATE SET policy_name = excluded.policy_name, document = excluded.document",
            params![lower, policy.to_lowercase(), policy, document],
        )?;
        Ok(true)
    })
    .await
}

/// `(policy name, document)` for one policy.
pub async fn get_role_policy(
    db: &Db,
    role: &str,
    policy: &str,
) -> rusqlite::Result<Option<(String, String)>> {
    let key = [role.to_lowercase(), policy.to_lowercase()];
    db.read(move |c| {
        c.query_row(
            "SELECT policy_name, document FROM iam_role_policies WHERE role_lower = ?1 AND policy_lower = ?2",
            key,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
    })
    .await
}

/// `(policy name, document)` of every inline policy of `role`, by name.
pub async fn role_policies(db: &Db, role: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let role = role.to_string();
    db.read(move |c| select_policies(c, &role)).await
}

/// The inline policies of `role` (as [`role_policies`]), or `None` if there is no such role,
/// read on the calling thread: for the authorizer, which must answer synchronously (see
/// `Db::read_blocking`).
pub fn inline_policies_blocking(
    db: &Db,
    role: &str,
) -> rusqlite::Result<Option<Vec<(String, String)>>> {
    db.read_blocking(|c| match select_role(c, role)? {
        Some(_) => select_policies(c, role).map(Some),
        None => Ok(None),
    })
}

/// `false` if there was no such policy.
pub async fn delete_role_policy(db: &Db, role: &str, policy: &str) -> rusqlite::Result<bool> {
    let key = [role.to_lowercase(), policy.to_lowercase()];
    db.write(move |tx| {
        let n = tx.execute(
            "DELETE FROM iam_role_policies WHERE role_lower = ?1 AND policy_lower = ?2",
            key,
        )?;
        Ok(n == 1)
    })
    .await
}
