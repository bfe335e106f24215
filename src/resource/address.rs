//! Resource addresses: the stable names that plans, journals, saved plans and cost lines
//! use for resources and for the few things that are not resources (rollout gates, an
//! app's secrets request, what-if models).
//!
//! An [`Address`] keeps its canonical text (shared, so clones are cheap) and the
//! positions of its parts, so the owner, kind, name, index and instance ID are read
//! without parsing again. It is built only by the constructors below or by parsing
//! ([`FromStr`], serde), which checks the grammar; `Display` and serde give back exactly
//! the canonical text, and parsing it gives back an equal address.
//!
//! # Grammar
//!
//! ```text
//! address    = owned | foreign-volume | rollout-gate | whatif | org-line
//! owned      = owner ( app-self | member | "#secrets" )
//! owner      = "tenant." name | "app." name
//! app-self   = ".app"                      (tenant owners; a shared app is `app.NAME` alone)
//! member     = ".machine" index [ instance ]
//!            | ".machine." name index [ instance ]   (a Machine of process group NAME)
//!            | ".machine" [ "." name ] index ".standby" index [ instance ]
//!                                      (standby K of a Machine slot)
//!            | ".machine" instance         (a managed Machine without an index)
//!            | ".volume." name index [ instance ]
//!            | ".backup." name index [ instance ]
//!            | ".secret." name
//!            | ".ip#" ip-kind [ "@" 1*char ]   (an IP assignment; `@IP`: a second one of a kind)
//!            | ".cert#" 1*char             (a custom domain's certificate, by hostname)
//! ip-kind    = "shared_v4" | "v4" | "v6" | "private_v6"
//! foreign-volume = "volume" instance       (a mount of a volume flotilla does not manage)
//! rollout-gate   = "rollout.wave" index
//! whatif     = "whatif." label             (a capacity model; label is any non-empty text)
//! org-line   = "org." name                 (organization-wide cost lines)
//! index      = "[" ( "0" | nonzero-digit *digit ) "]"     (fits in 32 bits)
//! instance   = "#" *char                   (a Fly ID: a second object for one slot)
//! name       = 1*( char - ( "." | "[" | "]" | "#" ) )
//! ```
//!
//! Examples: `tenant.alice.app`, `app.router`, `tenant.alice.machine[0]`,
//! `tenant.alice.volume.data[0]`, `app.router.backup.cache[1]`, `tenant.alice.secret.KEY`,
//! `tenant.alice.machine.web[1]` (process group `web`), `tenant.alice.machine[0].standby[0]`
//! (the first standby of `machine[0]`), `tenant.alice.machine[0]#e784079b` (a duplicate), `app.web.machine#e784079b`,
//! `volume#vol_123`, `tenant.alice#secrets`, `rollout.wave[2]`, `whatif.hybrid`,
//! `org.snapshot_allowance`, `tenant.alice.ip#v6`, `app.router.ip#v4@198.51.100.7`,
//! `tenant.alice.cert#alice.myjarvis.io`, `app.router.cert#*.myjarvis.io`.
//!
//! The spec's naming rules are stricter than `name`; constructors expect names that
//! satisfy [`is_name`] (the spec's validation and the state interpretation see to it).
//!
//! # Order
//!
//! Addresses order naturally by their text: runs of digits compare as numbers, so
//! `user-2` comes before `user-10` and `machine[2]` before `machine[10]` ([`natural_cmp`]).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Kind;
use super::network::IpKind;

/// Who owns a group of resources: a tenant, or a shared (non-tenant) app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner<'a> {
    Tenant(&'a str),
    SharedApp(&'a str),
}

impl<'a> Owner<'a> {
    /// The tenant's or the shared app's name.
    pub fn name(&self) -> &'a str {
        match self {
            Owner::Tenant(n) | Owner::SharedApp(n) => n,
        }
    }

    fn scope(&self) -> &'static str {
        match self {
            Owner::Tenant(_) => TENANT,
            Owner::SharedApp(_) => APP,
        }
    }

    /// Natural order of the owners' address prefixes (`app.…` before `tenant.…`).
    pub fn natural_cmp(&self, other: &Owner<'_>) -> Ordering {
        let rank = |o: &Owner<'_>| matches!(o, Owner::Tenant(_));
        rank(self)
            .cmp(&rank(other))
            .then_with(|| natural_cmp(self.name(), other.name()))
    }
}

/// `tenant.alice` or `app.router`: the prefix every address of the owner starts with.
impl fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.scope(), self.name())
    }
}

/// What an address names (the grammar's alternatives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressForm {
    App,
    Machine,
    Volume,
    BackupPolicy,
    Secret,
    /// `OWNER.ip#KIND`: an IP assignment of the owner's app.
    Ip,
    /// `OWNER.cert#HOSTNAME`: the certificate of a custom domain.
    Certificate,
    /// `OWNER#secrets`: the one request that sets an app's secrets.
    SecretBatch,
    /// `volume#ID`: a mounted volume that is not managed.
    ForeignVolume,
    /// `rollout.wave[N]`.
    RolloutGate,
    /// `whatif.LABEL`.
    WhatIf,
    /// `org.NAME`.
    OrgLine,
}

const TENANT: &str = "tenant.";
const APP: &str = "app.";
const MACHINE: &str = ".machine";
const STANDBY: &str = ".standby";
const VOLUME: &str = ".volume.";
const BACKUP: &str = ".backup.";
const SECRET: &str = ".secret.";
const SECRET_BATCH: &str = "#secrets";
const IP: &str = ".ip#";
const CERT: &str = ".cert#";
const FOREIGN_VOLUME: &str = "volume";
const ROLLOUT: &str = "rollout.wave";
const WHATIF: &str = "whatif.";
const ORG: &str = "org.";

/// Whether `s` may be a name in an address: non-empty, without `.`, `[`, `]` or `#`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['.', '[', ']', '#'])
}

/// Byte range of a part inside the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: u32,
    end: u32,
}

/// The parsed shape of an address (positions into its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts {
    form: AddressForm,
    /// `Some(true)` for a tenant, `Some(false)` for a shared app.
    tenant_owner: Option<bool>,
    owner: Span,
    name: Option<Span>,
    index: Option<u32>,
    /// `K` of a standby Machine's `.standby[K]` (after the primary's index).
    standby: Option<u32>,
    /// Where the instance ID starts (after `#` or `@`, so never at 0).
    instance: Option<NonZeroU32>,
}

impl Parts {
    fn new(form: AddressForm) -> Parts {
        Parts {
            form,
            tenant_owner: None,
            owner: Span::default(),
            name: None,
            index: None,
            standby: None,
            instance: None,
        }
    }
}

/// A stable, human-readable resource address (see the module docs for the grammar).
#[derive(Clone)]
pub struct Address {
    text: Arc<str>,
    parts: Parts,
    /// The text's hash, taken once: tables keyed by addresses (the resource index,
    /// the plan's and the cost engine's maps) hash this instead of reading the text.
    hash: u32,
}

/// The seed of addresses' hashes, random per process so that a spec cannot choose
/// colliding addresses.
static TEXT_HASH: std::sync::LazyLock<foldhash::fast::RandomState> =
    std::sync::LazyLock::new(foldhash::fast::RandomState::default);

/// Builds the canonical text and the parts together.
struct Builder {
    text: String,
    parts: Parts,
}

thread_local! {
    /// A reused buffer for building texts, so that an address costs one allocation
    /// (its shared text) rather than two.
    static SCRATCH: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

impl Builder {
    fn new(form: AddressForm, capacity: usize) -> Builder {
        let mut text = SCRATCH.with(std::cell::Cell::take);
        text.clear();
        text.reserve(capacity);
        Builder {
            text,
            parts: Parts::new(form),
        }
    }

    fn pos(&self) -> u32 {
        offset(self.text.len())
    }

    fn lit(mut self, s: &str) -> Builder {
        self.text.push_str(s);
        self
    }

    fn owner(mut self, owner: &Owner<'_>) -> Builder {
        self.text.push_str(owner.scope());
        let start = self.pos();
        self.text.push_str(owner.name());
        self.parts.owner = Span {
            start,
            end: self.pos(),
        };
        self.parts.tenant_owner = Some(matches!(owner, Owner::Tenant(_)));
        self
    }

    fn name(mut self, name: &str) -> Builder {
        let start = self.pos();
        self.text.push_str(name);
        self.parts.name = Some(Span {
            start,
            end: self.pos(),
        });
        self
    }

    fn index(mut self, index: u32) -> Builder {
        use std::fmt::Write;
        let _ = write!(self.text, "[{index}]");
        self.parts.index = Some(index);
        self
    }

    fn instance(mut self, id: &str) -> Builder {
        self.text.push('#');
        self.parts.instance = NonZeroU32::new(self.pos());
        self.text.push_str(id);
        self
    }

    fn build(self) -> Address {
        let address = Address::new(Arc::from(self.text.as_str()), self.parts);
        SCRATCH.with(|s| s.set(self.text));
        address
    }
}

/// Text positions are stored in 32 bits; longer texts are refused when parsing and
/// cannot come out of the constructors for real names.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn capacity(owner: &Owner<'_>, extra: usize) -> usize {
    TENANT.len() + owner.name().len() + extra + 12
}

impl Address {
    /// Where the shared text lives: equal for an address and its clones (and only for
    /// them while one is alive), so a table can recognise a clone without reading the
    /// text.
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.text).cast::<u8>() as usize
    }

    fn new(text: Arc<str>, parts: Parts) -> Address {
        // Truncated: the tables mix it again with their own hasher.
        let hash = TEXT_HASH.hash_one(&*text) as u32;
        Address { text, parts, hash }
    }

    /// The app itself: `tenant.alice.app` or `app.my-jarvis-router`.
    pub fn app(owner: &Owner<'_>) -> Address {
        let b = Builder::new(AddressForm::App, capacity(owner, 0)).owner(owner);
        match owner {
            Owner::Tenant(_) => b.lit(".app").build(),
            Owner::SharedApp(_) => b.build(),
        }
    }

    /// `OWNER.machine[INDEX]`.
    pub fn machine(owner: &Owner<'_>, index: u32) -> Address {
        Builder::new(AddressForm::Machine, capacity(owner, 0))
            .owner(owner)
            .lit(MACHINE)
            .index(index)
            .build()
    }

    /// `OWNER.machine.GROUP[INDEX]`: a Machine of process group `GROUP`.
    pub fn group_machine(owner: &Owner<'_>, group: &str, index: u32) -> Address {
        Builder::new(AddressForm::Machine, capacity(owner, group.len() + 1))
            .owner(owner)
            .lit(MACHINE)
            .lit(".")
            .name(group)
            .index(index)
            .build()
    }

    /// `SLOT.standby[K]`: standby `K` of this Machine slot (a Machine address with an
    /// index, not itself a standby nor a duplicate).
    pub fn standby(&self, k: u32) -> Option<Address> {
        let p = &self.parts;
        if p.form != AddressForm::Machine
            || p.index.is_none()
            || p.standby.is_some()
            || p.instance.is_some()
        {
            return None;
        }
        let mut text = String::with_capacity(self.text.len() + STANDBY.len() + 12);
        text.push_str(&self.text);
        text.push_str(STANDBY);
        text.push_str(&format!("[{k}]"));
        let mut parts = *p;
        parts.standby = Some(k);
        Some(Address::new(Arc::from(text), parts))
    }

    /// `K` of a standby Machine's address (`SLOT.standby[K]`).
    pub fn standby_index(&self) -> Option<u32> {
        self.parts.standby
    }

    /// The primary slot a standby stands by for (`SLOT` of `SLOT.standby[K]`, without
    /// an instance ID); `None` for anything but a standby.
    pub fn primary(&self) -> Option<Address> {
        self.parts.standby?;
        let owner = self.owner()?;
        let index = self.parts.index?;
        Some(match self.group() {
            Some(g) => Address::group_machine(&owner, g, index),
            None => Address::machine(&owner, index),
        })
    }

    /// The process group of a Machine's address (`OWNER.machine.GROUP[INDEX]`).
    pub fn group(&self) -> Option<&str> {
        match self.parts.form {
            AddressForm::Machine => self.name(),
            _ => None,
        }
    }

    /// `OWNER.machine#ID`: a managed Machine whose metadata names no slot.
    pub fn unindexed_machine(owner: &Owner<'_>, id: &str) -> Address {
        Builder::new(AddressForm::Machine, capacity(owner, id.len()))
            .owner(owner)
            .lit(MACHINE)
            .instance(id)
            .build()
    }

    /// `OWNER.volume.NAME[INDEX]`.
    pub fn volume(owner: &Owner<'_>, name: &str, index: u32) -> Address {
        Builder::new(AddressForm::Volume, capacity(owner, name.len()))
            .owner(owner)
            .lit(VOLUME)
            .name(name)
            .index(index)
            .build()
    }

    /// `OWNER.backup.VOLUME[INDEX]`: the snapshot policy of a volume.
    pub fn backup(owner: &Owner<'_>, volume: &str, index: u32) -> Address {
        Builder::new(AddressForm::BackupPolicy, capacity(owner, volume.len()))
            .owner(owner)
            .lit(BACKUP)
            .name(volume)
            .index(index)
            .build()
    }

    /// `OWNER.secret.NAME`.
    pub fn secret(owner: &Owner<'_>, name: &str) -> Address {
        Builder::new(AddressForm::Secret, capacity(owner, name.len()))
            .owner(owner)
            .lit(SECRET)
            .name(name)
            .build()
    }

    /// `OWNER.ip#KIND`: the app's IP address of that kind.
    pub fn ip(owner: &Owner<'_>, kind: IpKind) -> Address {
        Builder::new(AddressForm::Ip, capacity(owner, 12))
            .owner(owner)
            .lit(IP)
            .name(kind.as_str())
            .build()
    }

    /// `OWNER.ip#KIND@IP`: a further address of a kind the app already has one of.
    pub fn extra_ip(owner: &Owner<'_>, kind: IpKind, ip: &str) -> Address {
        let mut b = Builder::new(AddressForm::Ip, capacity(owner, 14 + ip.len()))
            .owner(owner)
            .lit(IP)
            .name(kind.as_str())
            .lit("@");
        b.parts.instance = NonZeroU32::new(b.pos());
        b.lit(ip).build()
    }

    /// `OWNER.cert#HOSTNAME`: the certificate of a custom domain.
    pub fn certificate(owner: &Owner<'_>, hostname: &str) -> Address {
        Builder::new(AddressForm::Certificate, capacity(owner, hostname.len()))
            .owner(owner)
            .lit(CERT)
            .name(hostname)
            .build()
    }

    /// `OWNER#secrets`: the request that sets (and deletes) an app's secrets.
    pub fn secret_batch(owner: &Owner<'_>) -> Address {
        Builder::new(AddressForm::SecretBatch, capacity(owner, 0))
            .owner(owner)
            .lit(SECRET_BATCH)
            .build()
    }

    /// `volume#ID`: a volume a Machine mounts that no managed volume resource stands for.
    pub fn foreign_volume(id: &str) -> Address {
        Builder::new(AddressForm::ForeignVolume, id.len() + 8)
            .lit(FOREIGN_VOLUME)
            .instance(id)
            .build()
    }

    /// `rollout.wave[N]`: the gate after rollout wave `N`.
    pub fn rollout_gate(wave: usize) -> Address {
        Builder::new(AddressForm::RolloutGate, 24)
            .lit(ROLLOUT)
            .index(offset(wave))
            .build()
    }

    /// `whatif.LABEL`: a what-if architecture model (the label is free text).
    pub fn whatif(label: &str) -> Address {
        Builder::new(AddressForm::WhatIf, label.len() + WHATIF.len())
            .lit(WHATIF)
            .name(label)
            .build()
    }

    /// `org.NAME`: an organization-wide cost line (allowances).
    pub fn org_line(name: &str) -> Address {
        Builder::new(AddressForm::OrgLine, name.len() + ORG.len())
            .lit(ORG)
            .name(name)
            .build()
    }

    /// The same slot held by a second object: `ADDRESS#ID`. `None` unless this is a
    /// Machine, volume or backup-policy slot (indexed, without an instance ID).
    pub fn duplicate(&self, id: &str) -> Option<Address> {
        let p = &self.parts;
        let slot = matches!(
            p.form,
            AddressForm::Machine | AddressForm::Volume | AddressForm::BackupPolicy
        );
        if !slot || p.index.is_none() || p.instance.is_some() {
            return None;
        }
        let mut text = String::with_capacity(self.text.len() + 1 + id.len());
        text.push_str(&self.text);
        text.push('#');
        let mut parts = *p;
        parts.instance = NonZeroU32::new(offset(text.len()));
        text.push_str(id);
        Some(Address::new(Arc::from(text), parts))
    }

    /// The backup-policy address of a volume address (same owner, name, index and
    /// instance); `None` for anything but a volume.
    pub fn backup_of_volume(&self) -> Option<Address> {
        if self.parts.form != AddressForm::Volume {
            return None;
        }
        let owner = self.owner()?;
        let b = Builder::new(AddressForm::BackupPolicy, self.text.len())
            .owner(&owner)
            .lit(BACKUP)
            .name(self.name()?)
            .index(self.parts.index?);
        Some(match self.instance() {
            Some(id) => b.instance(id).build(),
            None => b.build(),
        })
    }

    /// The address of volume `name` in this Machine's slot: same owner and index (0 for
    /// a Machine without an index). `None` for anything but a Machine.
    pub fn slot_volume(&self, name: &str) -> Option<Address> {
        if self.parts.form != AddressForm::Machine {
            return None;
        }
        Some(Address::volume(
            &self.owner()?,
            name,
            self.parts.index.unwrap_or(0),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn form(&self) -> AddressForm {
        self.parts.form
    }

    /// The resource kind, for the forms that name a resource.
    pub fn kind(&self) -> Option<Kind> {
        match self.parts.form {
            AddressForm::App => Some(Kind::App),
            AddressForm::Machine => Some(Kind::Machine),
            AddressForm::Volume => Some(Kind::Volume),
            AddressForm::BackupPolicy => Some(Kind::BackupPolicy),
            AddressForm::Secret => Some(Kind::Secret),
            AddressForm::Ip => Some(Kind::Ip),
            AddressForm::Certificate => Some(Kind::Certificate),
            _ => None,
        }
    }

    /// The tenant or shared app it belongs to (owned forms only).
    pub fn owner(&self) -> Option<Owner<'_>> {
        let name = self.slice(self.parts.owner);
        self.parts.tenant_owner.map(|tenant| match tenant {
            true => Owner::Tenant(name),
            false => Owner::SharedApp(name),
        })
    }

    /// The tenant, for addresses a tenant owns.
    pub fn tenant(&self) -> Option<&str> {
        match self.owner()? {
            Owner::Tenant(t) => Some(t),
            Owner::SharedApp(_) => None,
        }
    }

    /// The volume name (volumes and backup policies), the secret name, the IP kind,
    /// the certificate's hostname, the what-if label or the organization line's name.
    pub fn name(&self) -> Option<&str> {
        self.parts.name.map(|s| self.slice(s))
    }

    /// The slot index (Machines, volumes, backup policies) or the rollout wave.
    pub fn index(&self) -> Option<u32> {
        self.parts.index
    }

    /// The Fly ID after `#`: a second object for one slot, a Machine without an index
    /// or a foreign volume.
    pub fn instance(&self) -> Option<&str> {
        self.parts
            .instance
            .map(|start| &self.text[start.get() as usize..])
    }

    /// The kind of an IP assignment's address.
    pub fn ip_kind(&self) -> Option<IpKind> {
        match self.parts.form {
            AddressForm::Ip => self.name().and_then(IpKind::from_name),
            _ => None,
        }
    }

    /// A second object claiming a slot (or one that names none): it has an instance ID.
    pub fn is_duplicate(&self) -> bool {
        self.parts.instance.is_some()
    }

    fn slice(&self, s: Span) -> &str {
        &self.text[s.start as usize..s.end as usize]
    }
}

/// Why a text is not an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressError {
    pub text: String,
    pub reason: &'static str,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed address `{}`: {}", self.text, self.reason)
    }
}

impl std::error::Error for AddressError {}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Address, AddressError> {
        let err = |reason| AddressError {
            text: s.to_string(),
            reason,
        };
        if u32::try_from(s.len()).is_err() {
            return Err(err("too long"));
        }
        let parts = parse(s).map_err(err)?;
        Ok(Address::new(Arc::from(s), parts))
    }
}

/// A cursor over the text being parsed.
struct Cursor<'s> {
    s: &'s str,
    pos: usize,
}

impl<'s> Cursor<'s> {
    fn rest(&self) -> &'s str {
        &self.s[self.pos..]
    }

    fn eat(&mut self, lit: &str) -> bool {
        let hit = self.rest().starts_with(lit);
        if hit {
            self.pos += lit.len();
        }
        hit
    }

    fn at_end(&self) -> bool {
        self.pos == self.s.len()
    }

    /// A name up to the next `.`, `[`, `]`, `#` or the end.
    fn name(&mut self) -> Result<Span, &'static str> {
        let start = self.pos;
        let len = self
            .rest()
            .find(['.', '[', ']', '#'])
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err("a name is missing");
        }
        self.pos += len;
        Ok(Span {
            start: offset(start),
            end: offset(self.pos),
        })
    }

    fn index(&mut self) -> Result<u32, &'static str> {
        if !self.eat("[") {
            return Err("expected `[`");
        }
        let digits = self.rest().split(']').next().unwrap_or_default();
        let canonical = digits == "0" || (!digits.starts_with('0') && !digits.is_empty());
        if !canonical || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("an index is a number without leading zeros");
        }
        let n = digits.parse().map_err(|_| "the index is too large")?;
        self.pos += digits.len();
        if !self.eat("]") {
            return Err("expected `]`");
        }
        Ok(n)
    }

    fn end(&self) -> Result<(), &'static str> {
        if self.at_end() {
            Ok(())
        } else {
            Err("unexpected text at the end")
        }
    }

    /// An optional `#ID` that ends the address.
    fn instance(&mut self) -> Result<Option<NonZeroU32>, &'static str> {
        if self.eat("#") {
            let start = offset(self.pos);
            self.pos = self.s.len();
            Ok(NonZeroU32::new(start))
        } else {
            self.end().map(|_| None)
        }
    }
}

fn parse(s: &str) -> Result<Parts, &'static str> {
    let mut c = Cursor { s, pos: 0 };
    if c.eat(WHATIF) {
        if c.at_end() {
            return Err("a what-if label is missing");
        }
        let mut p = Parts::new(AddressForm::WhatIf);
        p.name = Some(Span {
            start: offset(c.pos),
            end: offset(s.len()),
        });
        return Ok(p);
    }
    if c.eat(ORG) {
        let mut p = Parts::new(AddressForm::OrgLine);
        p.name = Some(c.name()?);
        c.end()?;
        return Ok(p);
    }
    if c.eat(ROLLOUT) {
        let mut p = Parts::new(AddressForm::RolloutGate);
        p.index = Some(c.index()?);
        c.end()?;
        return Ok(p);
    }
    if c.eat(FOREIGN_VOLUME) {
        let mut p = Parts::new(AddressForm::ForeignVolume);
        if !c.rest().starts_with('#') {
            return Err("expected `volume#ID`");
        }
        p.instance = c.instance()?;
        return Ok(p);
    }
    parse_owned(c)
}

/// `tenant.T…` and `app.A…`.
fn parse_owned(mut c: Cursor<'_>) -> Result<Parts, &'static str> {
    let tenant = if c.eat(TENANT) {
        true
    } else if c.eat(APP) {
        false
    } else {
        return Err("expected `tenant.`, `app.`, `volume#`, `rollout.`, `whatif.` or `org.`");
    };
    let mut p = Parts::new(AddressForm::App);
    p.tenant_owner = Some(tenant);
    p.owner = c.name()?;
    if !tenant && c.at_end() {
        return Ok(p);
    }
    if tenant && c.eat(".app") {
        c.end()?;
        return Ok(p);
    }
    if c.eat(SECRET_BATCH) {
        c.end()?;
        p.form = AddressForm::SecretBatch;
        return Ok(p);
    }
    if c.eat(MACHINE) {
        p.form = AddressForm::Machine;
        if c.eat(".") {
            p.name = Some(c.name()?);
        } else if c.rest().starts_with('#') {
            p.instance = c.instance()?;
            return Ok(p);
        }
        p.index = Some(c.index()?);
        if c.eat(STANDBY) {
            p.standby = Some(c.index()?);
        }
        p.instance = c.instance()?;
        return Ok(p);
    }
    for (lit, form) in [
        (VOLUME, AddressForm::Volume),
        (BACKUP, AddressForm::BackupPolicy),
    ] {
        if c.eat(lit) {
            p.form = form;
            p.name = Some(c.name()?);
            p.index = Some(c.index()?);
            p.instance = c.instance()?;
            return Ok(p);
        }
    }
    if c.eat(SECRET) {
        p.form = AddressForm::Secret;
        p.name = Some(c.name()?);
        c.end()?;
        return Ok(p);
    }
    if c.eat(IP) {
        return parse_ip(c, p);
    }
    if c.eat(CERT) {
        if c.at_end() {
            return Err("a hostname is missing after `.cert#`");
        }
        p.form = AddressForm::Certificate;
        p.name = Some(Span {
            start: offset(c.pos),
            end: offset(c.s.len()),
        });
        return Ok(p);
    }
    Err(if tenant {
        "expected `.app`, `.machine`, `.volume.`, `.backup.`, `.secret.`, `.ip#`, `.cert#` or `#secrets` after the tenant"
    } else {
        "expected `.machine`, `.volume.`, `.backup.`, `.secret.`, `.ip#`, `.cert#` or `#secrets` after the app"
    })
}

/// `KIND [ "@" IP ]` after `.ip#`.
fn parse_ip(mut c: Cursor<'_>, mut p: Parts) -> Result<Parts, &'static str> {
    p.form = AddressForm::Ip;
    let start = c.pos;
    let len = c.rest().find('@').unwrap_or(c.rest().len());
    if IpKind::from_name(&c.rest()[..len]).is_none() {
        return Err("an IP kind is one of shared_v4, v4, v6, private_v6");
    }
    c.pos += len;
    p.name = Some(Span {
        start: offset(start),
        end: offset(c.pos),
    });
    if c.eat("@") {
        if c.at_end() {
            return Err("an address is missing after `@`");
        }
        p.instance = NonZeroU32::new(offset(c.pos));
    }
    Ok(p)
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// As the text, like the plain string addresses once were: `Address("tenant.a.app")`.
impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Address").field(&&*self.text).finish()
    }
}

impl PartialEq for Address {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.text, &other.text) || (self.hash == other.hash && self.text == other.text)
    }
}

impl Eq for Address {}

impl Hash for Address {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.hash);
    }
}

impl Ord for Address {
    fn cmp(&self, other: &Self) -> Ordering {
        natural_cmp(&self.text, &other.text)
    }
}

impl PartialOrd for Address {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Compares strings with digit runs taken as numbers (ties broken bytewise).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    // Skip the common prefix, backing up to the start of a digit run it ends in.
    let mut i = ab.iter().zip(bb).take_while(|(x, y)| x == y).count();
    if i == ab.len() && i == bb.len() {
        return Ordering::Equal;
    }
    while i > 0 && ab[i - 1].is_ascii_digit() {
        i -= 1;
    }
    let mut j = i;
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests;
