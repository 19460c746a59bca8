//! Category rules as data (config/classifier.toml), compiled once into one Aho-Corasick
//! automaton of phrases and one `RegexSet`, then evaluated per message.
//!
//! A rule adds `weight` to a category (or to an outage signal) when its phrases match
//! in its scope, every `requires` group matches in that scope too, and no `unless`
//! group does. Phrases match on word boundaries, case-insensitively; a trailing `*`
//! makes a phrase a prefix (`invoic*`). `@name` refers to a lexicon, a named phrase
//! list shared by many rules (request verbs, OS objects, …), so intent is modelled
//! once. Header rules look at the normaliser's flags and the sender address.

use std::collections::{BTreeMap, HashMap};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;
use supportd_core::{Category, Entities, InboundMessage};

use crate::combination::Combination;
use crate::scores::CategoryScores;
use crate::text::{MessageText, Section, SectionMask, is_word_character, normalise_phrase};

/// Compiled regexes may not grow beyond this (bytes of compiled program), so a
/// pathological pattern in the config fails at startup instead of eating memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Lazy DFA cache per regex (set): large enough that it is not rebuilt per message.
const REGEX_DFA_CACHE_LIMIT: usize = 8 << 20;

/// Rule regexes run over the lower-cased message bytes with ASCII classes and word
/// boundaries (`\w`, `\b`): the rules' words are ASCII, and Unicode classes would keep
/// the regex engine off its fast DFA.
fn regex_builder(pattern: &str) -> RegexBuilder {
    let mut builder = RegexBuilder::new(pattern);
    builder
        .case_insensitive(true)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_CACHE_LIMIT);
    builder
}

/// Why the rules file could not be loaded. Every variant names the file and the rule.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{source_name}: {source}")]
    Toml {
        source_name: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{source_name}: rule `{rule}`: {reason}")]
    Rule {
        source_name: String,
        rule: String,
        reason: String,
    },
    #[error("{source_name}: rule `{rule}`: regex `{pattern}` does not compile: {source}")]
    Regex {
        source_name: String,
        rule: String,
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("{source_name}: {reason}")]
    Settings { source_name: String, reason: String },
}

// ---------------------------------------------------------------- the file as written

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    scoring: ScoringSettings,
    outage: OutageSettings,
    combination: Combination,
    #[serde(default)]
    lexicons: BTreeMap<String, Vec<String>>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleConfig>,
    #[serde(default, rename = "header_rule")]
    header_rules: Vec<HeaderRuleConfig>,
    #[serde(default, rename = "entity_rule")]
    entity_rules: Vec<EntityRuleConfig>,
}

/// Which kind of extracted entity an entity rule looks for.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum EntityKind {
    SubscriptionIds,
    TenantIds,
    ResourceIds,
    InvoiceNumbers,
    Regions,
    ErrorCodes,
    MicrosoftCases,
}

impl EntityKind {
    fn found(self, entities: &Entities) -> Option<&String> {
        let list = match self {
            EntityKind::SubscriptionIds => &entities.subscription_ids,
            EntityKind::TenantIds => &entities.tenant_ids,
            EntityKind::ResourceIds => &entities.resource_ids,
            EntityKind::InvoiceNumbers => &entities.invoice_numbers,
            EntityKind::Regions => &entities.regions,
            EntityKind::ErrorCodes => &entities.error_codes,
            EntityKind::MicrosoftCases => &entities.microsoft_cases,
        };
        list.first()
    }
}

/// Adds weight when the message mentions an entity of a kind (a Microsoft case
/// number, an invoice number, an error code).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityRuleConfig {
    name: String,
    category: String,
    weight: f32,
    entity: EntityKind,
    #[serde(default)]
    decisive: bool,
}

/// How rule scores become a decision.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScoringSettings {
    /// Temperature of the softmax that turns scores into a confidence.
    pub(crate) softmax_temperature: f32,
    /// Below this best score, the message gets `fallback_category`.
    pub(crate) minimum_score: f32,
    pub(crate) fallback_category: Category,
    /// Factor for a `request`-scope rule that matched only in forwarded text.
    pub(crate) forwarded_weight: f32,
    /// New text with fewer words than this ("see below") lets forwarded text count fully.
    pub(crate) short_new_text_words: usize,
    /// Each further match of a rule's phrases in scope adds this fraction of its weight…
    pub(crate) repeat_bonus: f32,
    /// …up to this factor of its weight.
    pub(crate) max_repeat_factor: f32,
    /// Extra factor when the rule's phrases match in the subject (the sender's summary).
    pub(crate) subject_bonus: f32,
}

/// When an outage report counts as ongoing (see outage.rs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutageSettings {
    /// The impact signal must reach this: something is broken for the sender.
    pub(crate) minimum_impact: f32,
    /// impact + present - not_ongoing must reach this.
    pub(crate) threshold: f32,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Scope {
    Subject,
    NewText,
    /// Subject and new text; forwarded text at `forwarded_weight`.
    Request,
    /// Everything, quoted history included.
    All,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    name: String,
    category: Option<String>,
    signal: Option<String>,
    weight: f32,
    #[serde(default = "default_scope")]
    scope: Scope,
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    unless: Vec<String>,
    /// When it fires, only categories of decisive rules can win (see combination.rs).
    #[serde(default)]
    decisive: bool,
}

fn default_scope() -> Scope {
    Scope::Request
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum MessageFlag {
    AutoSubmitted,
    Bounce,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderRuleConfig {
    name: String,
    category: String,
    weight: f32,
    #[serde(default)]
    flags: Vec<MessageFlag>,
    /// Sender local parts that start with one of these (`mailer-daemon`, `no-reply`).
    #[serde(default)]
    sender_prefixes: Vec<String>,
    #[serde(default)]
    decisive: bool,
}

// ---------------------------------------------------------------- compiled form

/// What a rule adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Category(Category),
    OutageSignal(OutageSignal),
}

/// Scores beside the categories, read by other signals (outage.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutageSignal {
    /// Something is broken or unreachable for the sender.
    Impact,
    /// It is happening now ("since 07:40", "right now", "still").
    Present,
    /// Planned, resolved, past, or only a question.
    NotOngoing,
}

impl OutageSignal {
    pub(crate) const ALL: [OutageSignal; 3] = [
        OutageSignal::Impact,
        OutageSignal::Present,
        OutageSignal::NotOngoing,
    ];

    pub(crate) fn slug(self) -> &'static str {
        match self {
            OutageSignal::Impact => "outage-impact",
            OutageSignal::Present => "outage-present",
            OutageSignal::NotOngoing => "outage-not-ongoing",
        }
    }
}

#[derive(Debug)]
struct CompiledRule {
    name: String,
    target: Target,
    weight: f32,
    scope: Scope,
    /// The group of the rule's own phrases and regexes; `None` = always present.
    phrase_group: Option<usize>,
    requires: Vec<usize>,
    unless: Vec<usize>,
    /// Indices into `Rules::regexes` of this rule's regexes (for the reason text).
    regexes: Vec<usize>,
    decisive: bool,
}

#[derive(Debug)]
struct CompiledHeaderRule {
    name: String,
    category: Category,
    weight: f32,
    flags: Vec<MessageFlag>,
    sender_prefixes: Vec<String>,
    decisive: bool,
}

/// A compiled entity rule.
#[derive(Debug)]
struct CompiledEntityRule {
    name: String,
    category: Category,
    weight: f32,
    entity: EntityKind,
    decisive: bool,
}

#[derive(Debug, Clone, Copy)]
struct PatternInfo {
    /// Check a word boundary before the match (the phrase starts with a word character).
    check_start: bool,
    /// Check a word boundary after the match (not a `*` prefix, ends with a word character).
    check_end: bool,
}

/// The category rules, compiled.
#[derive(Debug)]
pub struct Rules {
    pub(crate) scoring: ScoringSettings,
    pub(crate) outage: OutageSettings,
    pub(crate) combination: Combination,
    /// Every phrase and regex: run over subject, new text and forwarded text.
    request_matcher: Matcher,
    /// Only the phrases and regexes of `all`-scope rules: run over quoted history,
    /// which is often most of a reply's bytes and matters to few rules.
    history_matcher: Matcher,
    patterns: Vec<PatternInfo>,
    /// Pattern index -> the groups that contain it.
    pattern_groups: Vec<Vec<usize>>,
    regexes: Vec<Regex>,
    /// Regex index -> the group it belongs to.
    regex_groups: Vec<usize>,
    group_count: usize,
    rules: Vec<CompiledRule>,
    header_rules: Vec<CompiledHeaderRule>,
    entity_rules: Vec<CompiledEntityRule>,
}

/// An automaton and a regex set over a subset of the patterns and regexes, with the
/// map from their local indices to the global ones.
#[derive(Debug)]
struct Matcher {
    automaton: AhoCorasick,
    pattern_ids: Vec<usize>,
    regex_set: RegexSet,
    regex_ids: Vec<usize>,
}

/// Where a group matched: a bit per section, and the first span per section.
#[derive(Debug, Clone, Copy, Default)]
struct GroupHit {
    sections: SectionMask,
    /// Matches per section.
    counts: [u16; 4],
    spans: [Option<(u32, u32)>; 4],
}

/// A rule that fired on a message, with what it added.
#[derive(Debug, Clone)]
pub(crate) struct FiredRule {
    pub(crate) name: String,
    pub(crate) target: Target,
    pub(crate) contribution: f32,
    /// The text that matched (lower-cased), when a phrase or regex matched.
    pub(crate) evidence: Option<String>,
    /// A decisive rule: only categories of decisive rules can win.
    pub(crate) decisive: bool,
}

/// Everything the rules say about one message.
#[derive(Debug, Clone)]
pub(crate) struct RuleEvaluation {
    pub(crate) category_scores: CategoryScores,
    pub(crate) signals: [f32; OutageSignal::ALL.len()],
    pub(crate) fired: Vec<FiredRule>,
}

impl RuleEvaluation {
    pub(crate) fn signal(&self, signal: OutageSignal) -> f32 {
        self.signals[signal as usize]
    }
}

impl Rules {
    /// Parses and compiles the rules file. Unknown keys, unknown categories, signals
    /// and lexicons, and regexes that do not compile are errors naming the rule.
    pub fn from_toml(toml_text: &str, source_name: &str) -> Result<Rules, RulesError> {
        let file: RulesFile = toml::from_str(toml_text).map_err(|source| RulesError::Toml {
            source_name: source_name.to_owned(),
            source,
        })?;
        RulesCompiler::new(source_name).compile(file)
    }

    /// Runs every rule over the message.
    pub(crate) fn evaluate(
        &self,
        message_text: &MessageText,
        message: &InboundMessage,
        entities: &Entities,
    ) -> RuleEvaluation {
        let hits = self.match_groups(message_text);
        let forwarded_factor = if message_text.new_text_words < self.scoring.short_new_text_words {
            1.0
        } else {
            self.scoring.forwarded_weight
        };
        let mut evaluation = RuleEvaluation {
            category_scores: CategoryScores::default(),
            signals: [0.0; OutageSignal::ALL.len()],
            fired: Vec::new(),
        };
        for rule in &self.rules {
            let scope_mask = scope_mask(rule.scope);
            let present = |group: usize| hits[group].sections & scope_mask != 0;
            if !rule.requires.iter().all(|&group| present(group))
                || rule.unless.iter().any(|&group| present(group))
            {
                continue;
            }
            let (factor, evidence) = match rule.phrase_group {
                None => (1.0, None),
                Some(group) => {
                    let sections = hits[group].sections & scope_mask;
                    if sections == 0 {
                        continue;
                    }
                    let full = Section::Subject.bit() | Section::NewText.bit();
                    let mut factor = if rule.scope == Scope::Request && sections & full == 0 {
                        forwarded_factor
                    } else {
                        1.0
                    };
                    let matches: u32 = Section::ALL
                        .into_iter()
                        .filter(|section| sections & section.bit() != 0)
                        .map(|section| u32::from(hits[group].counts[section as usize]))
                        .sum();
                    factor *= (1.0 + self.scoring.repeat_bonus * matches.saturating_sub(1) as f32)
                        .min(self.scoring.max_repeat_factor.max(1.0));
                    if sections & Section::Subject.bit() != 0 {
                        factor *= 1.0 + self.scoring.subject_bonus;
                    }
                    (
                        factor,
                        self.evidence(rule, &hits[group], sections, message_text),
                    )
                }
            };
            let contribution = rule.weight * factor;
            match rule.target {
                Target::Category(category) => {
                    evaluation.category_scores.add(category, contribution)
                }
                Target::OutageSignal(signal) => evaluation.signals[signal as usize] += contribution,
            }
            evaluation.fired.push(FiredRule {
                name: rule.name.clone(),
                target: rule.target,
                contribution,
                evidence,
                decisive: rule.decisive,
            });
        }
        self.evaluate_header_rules(message, &mut evaluation);
        for rule in &self.entity_rules {
            if let Some(found) = rule.entity.found(entities) {
                evaluation.category_scores.add(rule.category, rule.weight);
                evaluation.fired.push(FiredRule {
                    name: rule.name.clone(),
                    target: Target::Category(rule.category),
                    contribution: rule.weight,
                    evidence: Some(found.clone()),
                    decisive: rule.decisive,
                });
            }
        }
        evaluation
    }

    fn evaluate_header_rules(&self, message: &InboundMessage, evaluation: &mut RuleEvaluation) {
        let sender = message.sender_email();
        let local_part = sender.split('@').next().unwrap_or("");
        for rule in &self.header_rules {
            let flag = rule.flags.iter().find(|flag| match flag {
                MessageFlag::AutoSubmitted => message.flags.auto_submitted,
                MessageFlag::Bounce => message.flags.bounce,
            });
            let prefix = rule
                .sender_prefixes
                .iter()
                .find(|prefix| local_part.starts_with(prefix.as_str()));
            let evidence = match (flag, prefix) {
                (Some(MessageFlag::AutoSubmitted), _) => format!(
                    "auto-submitted ({})",
                    message.flags.auto_reason.as_deref().unwrap_or("flag")
                ),
                (Some(MessageFlag::Bounce), _) => "bounce".to_owned(),
                (None, Some(_)) => format!("sender {sender}"),
                (None, None) => continue,
            };
            evaluation.category_scores.add(rule.category, rule.weight);
            evaluation.fired.push(FiredRule {
                name: rule.name.clone(),
                target: Target::Category(rule.category),
                contribution: rule.weight,
                evidence: Some(evidence),
                decisive: rule.decisive,
            });
        }
    }

    /// One pass of the request automaton over subject, new text and forwarded text,
    /// one of the history automaton over quoted text, and a `RegexSet` run per section:
    /// where each group matched.
    fn match_groups(&self, message_text: &MessageText) -> Vec<GroupHit> {
        let mut hits = vec![GroupHit::default(); self.group_count];
        let request_end = message_text.ranges[Section::Forwarded as usize].1;
        let (history_start, history_end) = message_text.ranges[Section::Quoted as usize];
        self.match_phrases(
            &self.request_matcher,
            message_text,
            0,
            request_end,
            &mut hits,
        );
        self.match_phrases(
            &self.history_matcher,
            message_text,
            history_start,
            history_end,
            &mut hits,
        );
        for section in Section::ALL {
            let matcher = if section == Section::Quoted {
                &self.history_matcher
            } else {
                &self.request_matcher
            };
            let text = message_text.section_text(section);
            if matcher.regex_ids.is_empty() || text.is_empty() {
                continue;
            }
            for local in matcher.regex_set.matches(text.as_bytes()).iter() {
                let hit = &mut hits[self.regex_groups[matcher.regex_ids[local]]];
                hit.sections |= section.bit();
                hit.counts[section as usize] = hit.counts[section as usize].saturating_add(1);
            }
        }
        hits
    }

    fn match_phrases(
        &self,
        matcher: &Matcher,
        message_text: &MessageText,
        from: usize,
        to: usize,
        hits: &mut [GroupHit],
    ) {
        if from >= to || matcher.pattern_ids.is_empty() {
            return;
        }
        let buffer = message_text.buffer.as_str();
        let input = aho_corasick::Input::new(buffer).range(from..to);
        for found in matcher.automaton.find_overlapping_iter(input) {
            let pattern = matcher.pattern_ids[found.pattern().as_usize()];
            let info = self.patterns[pattern];
            let (start, end) = (found.start(), found.end());
            if info.check_start
                && buffer[..start]
                    .chars()
                    .next_back()
                    .is_some_and(is_word_character)
            {
                continue;
            }
            if info.check_end && buffer[end..].chars().next().is_some_and(is_word_character) {
                continue;
            }
            let section = message_text.section_at(start);
            for &group in &self.pattern_groups[pattern] {
                let hit = &mut hits[group];
                hit.sections |= section.bit();
                hit.counts[section as usize] = hit.counts[section as usize].saturating_add(1);
                hit.spans[section as usize].get_or_insert((start as u32, end as u32));
            }
        }
    }

    fn evidence(
        &self,
        rule: &CompiledRule,
        hit: &GroupHit,
        sections: SectionMask,
        message_text: &MessageText,
    ) -> Option<String> {
        let section = Section::ALL
            .into_iter()
            .find(|section| sections & section.bit() != 0)?;
        if let Some((start, end)) = hit.spans[section as usize] {
            return Some(message_text.buffer[start as usize..end as usize].to_owned());
        }
        let text = message_text.section_text(section);
        rule.regexes
            .iter()
            .find_map(|&regex| self.regexes[regex].find(text.as_bytes()))
            .map(|found| String::from_utf8_lossy(found.as_bytes()).into_owned())
    }

    /// How rule scores and model probabilities are mixed, and where the model file is.
    pub fn combination(&self) -> &Combination {
        &self.combination
    }

    /// The rule names, for tests and diagnostics.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .map(|rule| rule.name.as_str())
            .chain(self.header_rules.iter().map(|rule| rule.name.as_str()))
    }
}

fn scope_mask(scope: Scope) -> SectionMask {
    match scope {
        Scope::Subject => Section::Subject.bit(),
        Scope::NewText => Section::NewText.bit(),
        Scope::Request => {
            Section::Subject.bit() | Section::NewText.bit() | Section::Forwarded.bit()
        }
        Scope::All => 0b1111,
    }
}

// ---------------------------------------------------------------- compilation

struct RulesCompiler<'a> {
    source_name: &'a str,
    pattern_texts: Vec<String>,
    patterns: Vec<PatternInfo>,
    pattern_index: HashMap<(String, bool), usize>,
    pattern_groups: Vec<Vec<usize>>,
    group_count: usize,
    lexicon_groups: HashMap<String, usize>,
    lexicons: BTreeMap<String, Vec<String>>,
    regex_patterns: Vec<String>,
    regexes: Vec<Regex>,
    regex_groups: Vec<usize>,
}

impl<'a> RulesCompiler<'a> {
    fn new(source_name: &'a str) -> Self {
        RulesCompiler {
            source_name,
            pattern_texts: Vec::new(),
            patterns: Vec::new(),
            pattern_index: HashMap::new(),
            pattern_groups: Vec::new(),
            group_count: 0,
            lexicon_groups: HashMap::new(),
            lexicons: BTreeMap::new(),
            regex_patterns: Vec::new(),
            regexes: Vec::new(),
            regex_groups: Vec::new(),
        }
    }

    fn rule_error(&self, rule: &str, reason: String) -> RulesError {
        RulesError::Rule {
            source_name: self.source_name.to_owned(),
            rule: rule.to_owned(),
            reason,
        }
    }

    fn compile(mut self, file: RulesFile) -> Result<Rules, RulesError> {
        self.check_settings(&file)?;
        self.lexicons = file.lexicons;
        let lexicon_names: Vec<String> = self.lexicons.keys().cloned().collect();
        for name in lexicon_names {
            let phrases = self.lexicons[&name].clone();
            let group = self.new_group();
            for phrase in &phrases {
                self.add_phrase(&format!("lexicon {name}"), phrase, group)?;
            }
            self.lexicon_groups.insert(name, group);
        }
        let mut names = HashMap::new();
        let mut rules = Vec::with_capacity(file.rules.len());
        for rule in file.rules {
            if names.insert(rule.name.clone(), ()).is_some() {
                return Err(self.rule_error(&rule.name, "name used twice".to_owned()));
            }
            rules.push(self.compile_rule(rule)?);
        }
        let mut entity_rules = Vec::with_capacity(file.entity_rules.len());
        for rule in file.entity_rules {
            if names.insert(rule.name.clone(), ()).is_some() {
                return Err(self.rule_error(&rule.name, "name used twice".to_owned()));
            }
            let category = self.parse_category(&rule.name, &rule.category)?;
            entity_rules.push(CompiledEntityRule {
                name: rule.name,
                category,
                weight: rule.weight,
                entity: rule.entity,
                decisive: rule.decisive,
            });
        }
        let mut header_rules = Vec::with_capacity(file.header_rules.len());
        for rule in file.header_rules {
            if names.insert(rule.name.clone(), ()).is_some() {
                return Err(self.rule_error(&rule.name, "name used twice".to_owned()));
            }
            let category = self.parse_category(&rule.name, &rule.category)?;
            if rule.flags.is_empty() && rule.sender_prefixes.is_empty() {
                return Err(self.rule_error(
                    &rule.name,
                    "header rule needs `flags` or `sender_prefixes`".to_owned(),
                ));
            }
            header_rules.push(CompiledHeaderRule {
                name: rule.name,
                category,
                weight: rule.weight,
                flags: rule.flags,
                sender_prefixes: rule
                    .sender_prefixes
                    .iter()
                    .map(|prefix| prefix.to_lowercase())
                    .collect(),
                decisive: rule.decisive,
            });
        }
        let history_groups: Vec<bool> = {
            let mut used = vec![false; self.group_count];
            for rule in rules.iter().filter(|rule| rule.scope == Scope::All) {
                for &group in rule
                    .phrase_group
                    .iter()
                    .chain(&rule.requires)
                    .chain(&rule.unless)
                {
                    used[group] = true;
                }
            }
            used
        };
        let all_patterns: Vec<usize> = (0..self.pattern_texts.len()).collect();
        let all_regexes: Vec<usize> = (0..self.regexes.len()).collect();
        let history_patterns: Vec<usize> = all_patterns
            .iter()
            .copied()
            .filter(|&pattern| {
                self.pattern_groups[pattern]
                    .iter()
                    .any(|&group| history_groups[group])
            })
            .collect();
        let history_regexes: Vec<usize> = all_regexes
            .iter()
            .copied()
            .filter(|&regex| history_groups[self.regex_groups[regex]])
            .collect();
        let request_matcher = self.matcher(all_patterns, all_regexes)?;
        let history_matcher = self.matcher(history_patterns, history_regexes)?;
        Ok(Rules {
            scoring: file.scoring,
            outage: file.outage,
            combination: file.combination,
            request_matcher,
            history_matcher,
            patterns: self.patterns,
            pattern_groups: self.pattern_groups,
            regexes: self.regexes,
            regex_groups: self.regex_groups,
            group_count: self.group_count,
            rules,
            header_rules,
            entity_rules,
        })
    }

    fn matcher(
        &self,
        pattern_ids: Vec<usize>,
        regex_ids: Vec<usize>,
    ) -> Result<Matcher, RulesError> {
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .prefilter(false)
            .build(
                pattern_ids
                    .iter()
                    .map(|&pattern| &self.pattern_texts[pattern]),
            )
            .map_err(|error| RulesError::Settings {
                source_name: self.source_name.to_owned(),
                reason: format!("phrase automaton: {error}"),
            })?;
        let regex_set =
            RegexSetBuilder::new(regex_ids.iter().map(|&regex| &self.regex_patterns[regex]))
                .case_insensitive(true)
                .unicode(false)
                .size_limit(REGEX_SIZE_LIMIT * 8)
                .dfa_size_limit(REGEX_DFA_CACHE_LIMIT)
                .build()
                .map_err(|error| RulesError::Settings {
                    source_name: self.source_name.to_owned(),
                    reason: format!("regex set: {error}"),
                })?;
        Ok(Matcher {
            automaton,
            pattern_ids,
            regex_set,
            regex_ids,
        })
    }

    fn check_settings(&self, file: &RulesFile) -> Result<(), RulesError> {
        let settings_error = |reason: &str| RulesError::Settings {
            source_name: self.source_name.to_owned(),
            reason: reason.to_owned(),
        };
        let scoring = &file.scoring;
        if scoring.softmax_temperature.is_nan() || scoring.softmax_temperature <= 0.0 {
            return Err(settings_error("scoring.softmax_temperature must be > 0"));
        }
        if !(0.0..=1.0).contains(&scoring.forwarded_weight) {
            return Err(settings_error(
                "scoring.forwarded_weight must be within 0..=1",
            ));
        }
        let combination = &file.combination;
        let non_negative = |weight: f32| weight.is_finite() && weight >= 0.0;
        if !non_negative(combination.rule_weight) || !non_negative(combination.model_weight) {
            return Err(settings_error(
                "combination.rule_weight and combination.model_weight must be >= 0",
            ));
        }
        if !(combination.probability_floor > 0.0 && combination.probability_floor < 1.0) {
            return Err(settings_error(
                "combination.probability_floor must be within 0..1 (exclusive)",
            ));
        }
        Ok(())
    }

    fn new_group(&mut self) -> usize {
        self.group_count += 1;
        self.group_count - 1
    }

    fn add_phrase(&mut self, owner: &str, phrase: &str, group: usize) -> Result<(), RulesError> {
        let (text, prefix) = match phrase.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (phrase, false),
        };
        let text = normalise_phrase(text);
        if text.is_empty() {
            return Err(self.rule_error(owner, format!("phrase `{phrase}` is empty")));
        }
        let key = (text, prefix);
        let pattern = match self.pattern_index.get(&key) {
            Some(&pattern) => pattern,
            None => {
                let pattern = self.pattern_texts.len();
                let check_start = key.0.chars().next().is_some_and(is_word_character);
                let check_end = !prefix && key.0.chars().next_back().is_some_and(is_word_character);
                self.pattern_texts.push(key.0.clone());
                self.patterns.push(PatternInfo {
                    check_start,
                    check_end,
                });
                self.pattern_groups.push(Vec::new());
                self.pattern_index.insert(key, pattern);
                pattern
            }
        };
        if !self.pattern_groups[pattern].contains(&group) {
            self.pattern_groups[pattern].push(group);
        }
        Ok(())
    }

    /// Adds a phrase or, for `@name`, every phrase of that lexicon, to `group`.
    fn add_term(&mut self, rule: &str, term: &str, group: usize) -> Result<(), RulesError> {
        match term.strip_prefix('@') {
            Some(lexicon) => {
                let phrases = self.lexicons.get(lexicon).cloned().ok_or_else(|| {
                    self.rule_error(rule, format!("unknown lexicon `@{lexicon}`"))
                })?;
                for phrase in &phrases {
                    self.add_phrase(rule, phrase, group)?;
                }
                Ok(())
            }
            None => self.add_phrase(rule, term, group),
        }
    }

    /// A `requires` / `unless` entry: a lexicon's shared group, or a one-phrase group.
    fn condition_group(&mut self, rule: &str, term: &str) -> Result<usize, RulesError> {
        if let Some(lexicon) = term.strip_prefix('@') {
            return self
                .lexicon_groups
                .get(lexicon)
                .copied()
                .ok_or_else(|| self.rule_error(rule, format!("unknown lexicon `@{lexicon}`")));
        }
        let group = self.new_group();
        self.add_phrase(rule, term, group)?;
        Ok(group)
    }

    fn parse_category(&self, rule: &str, slug: &str) -> Result<Category, RulesError> {
        slug.parse::<Category>()
            .map_err(|error| self.rule_error(rule, error.to_string()))
    }

    fn compile_rule(&mut self, rule: RuleConfig) -> Result<CompiledRule, RulesError> {
        let target = match (&rule.category, &rule.signal) {
            (Some(category), None) => Target::Category(self.parse_category(&rule.name, category)?),
            (None, Some(signal)) => Target::OutageSignal(
                OutageSignal::ALL
                    .into_iter()
                    .find(|candidate| candidate.slug() == signal)
                    .ok_or_else(|| {
                        self.rule_error(
                            &rule.name,
                            format!(
                                "unknown signal `{signal}` (expected one of: {})",
                                OutageSignal::ALL.map(OutageSignal::slug).join(", ")
                            ),
                        )
                    })?,
            ),
            _ => {
                return Err(self.rule_error(
                    &rule.name,
                    "needs exactly one of `category` and `signal`".to_owned(),
                ));
            }
        };
        if !rule.weight.is_finite() {
            return Err(self.rule_error(&rule.name, "weight must be a finite number".to_owned()));
        }
        if rule.phrases.is_empty()
            && rule.regexes.is_empty()
            && rule.requires.is_empty()
            && rule.unless.is_empty()
        {
            return Err(self.rule_error(
                &rule.name,
                "needs `phrases`, `regexes`, `requires` or `unless`".to_owned(),
            ));
        }
        let phrase_group = if rule.phrases.is_empty() && rule.regexes.is_empty() {
            None
        } else {
            Some(self.new_group())
        };
        let mut regexes = Vec::new();
        if let Some(group) = phrase_group {
            for phrase in &rule.phrases {
                self.add_term(&rule.name, phrase, group)?;
            }
            for pattern in &rule.regexes {
                let compiled =
                    regex_builder(pattern)
                        .build()
                        .map_err(|source| RulesError::Regex {
                            source_name: self.source_name.to_owned(),
                            rule: rule.name.clone(),
                            pattern: pattern.clone(),
                            source,
                        })?;
                regexes.push(self.regexes.len());
                self.regexes.push(compiled);
                self.regex_patterns.push(pattern.clone());
                self.regex_groups.push(group);
            }
        }
        let requires = rule
            .requires
            .iter()
            .map(|term| self.condition_group(&rule.name, term))
            .collect::<Result<Vec<_>, _>>()?;
        let unless = rule
            .unless
            .iter()
            .map(|term| self.condition_group(&rule.name, term))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompiledRule {
            name: rule.name,
            target,
            weight: rule.weight,
            scope: rule.scope,
            phrase_group,
            requires,
            unless,
            regexes,
            decisive: rule.decisive,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "[scoring]\nsoftmax_temperature = 1.0\nminimum_score = 1.0\nfallback_category = \"other\"\nforwarded_weight = 0.5\nshort_new_text_words = 10\nrepeat_bonus = 0.0\nmax_repeat_factor = 1.0\nsubject_bonus = 0.0\n[outage]\nminimum_impact = 1.0\nthreshold = 1.0\n[combination]\nrule_weight = 1.0\nmodel_weight = 1.0\nprobability_floor = 0.001\n";

    fn load(rules: &str) -> Result<Rules, RulesError> {
        Rules::from_toml(&format!("{HEAD}{rules}"), "classifier.toml")
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let error = load(
            "[[rule]]\nname = \"a\"\ncategory = \"billing\"\nweight = 1.0\nphrase = [\"x\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown field `phrase`"), "{error}");
        assert!(error.starts_with("classifier.toml"), "{error}");
    }

    #[test]
    fn bad_regex_unknown_category_and_lexicon_name_the_rule() {
        let error = load("[[rule]]\nname = \"broken\"\ncategory = \"billing\"\nweight = 1.0\nregexes = [\"(unclosed\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rule `broken`: regex `(unclosed`"),
            "{error}"
        );
        let error = load(
            "[[rule]]\nname = \"typo\"\ncategory = \"biling\"\nweight = 1.0\nphrases = [\"x\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("rule `typo`: unknown category `biling`"),
            "{error}"
        );
        let error = load("[[rule]]\nname = \"lex\"\ncategory = \"billing\"\nweight = 1.0\nphrases = [\"@nope\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rule `lex`: unknown lexicon `@nope`"),
            "{error}"
        );
        let error = load("[[rule]]\nname = \"huge\"\ncategory = \"billing\"\nweight = 1.0\nregexes = [\"(?u:\\\\w{500})\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("rule `huge`"), "{error}");
    }

    /// Patterns that backtracking engines take exponential time on run in
    /// linear time here (the regex crate has no backtracking), and a pattern
    /// whose compiled form is too large is refused at load with the rule named.
    #[test]
    fn catastrophic_patterns_are_refused_or_run_in_linear_time() {
        let rules = load("[[rule]]\nname = \"nested\"\ncategory = \"billing\"\nweight = 1.0\nregexes = [\"(x+x+)+y\", \"(a|aa)*c\", \"(.*a){12}z\", \"^(\\\\w+\\\\s?)*$\"]\n")
            .unwrap();
        let mut body = "x".repeat(100_000);
        body.push_str(&"a".repeat(100_000));
        body.push_str(&"word ".repeat(20_000));
        body.push('!');
        let message = InboundMessage {
            message_id: String::new(),
            message_id_synthesized: false,
            in_reply_to: vec![],
            references: vec![],
            from: None,
            reply_to: vec![],
            to: vec![],
            cc: vec![],
            subject: String::new(),
            date: None,
            body_text: body.clone(),
            body_html: None,
            new_text: body,
            forwarded_text: String::new(),
            attachments: vec![],
            flags: supportd_core::MessageFlags::default(),
            size: 0,
            content_hash: String::new(),
            warnings: vec![],
        };
        let message_text = MessageText::new(&message);
        let started = std::time::Instant::now();
        let hits = rules.match_groups(&message_text);
        let elapsed = started.elapsed();
        assert!(
            elapsed < std::time::Duration::from_secs(10),
            "took {elapsed:?}"
        );
        assert_eq!(hits.len(), rules.group_count);
        for pattern in [
            "(?u:\\\\w{100}){100}",
            "((a{100}){100}){100}",
            "[a-z]{1000}{1000}",
        ] {
            let error = load(&format!(
                "[[rule]]\nname = \"explosive\"\ncategory = \"billing\"\nweight = 1.0\nregexes = [\"{pattern}\"]\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(
                error.contains("rule `explosive`") && error.contains("size limit"),
                "{pattern}: {error}"
            );
        }
    }

    #[test]
    fn the_shipped_rules_compile() {
        let text = include_str!("../../../config/classifier.toml");
        let rules = Rules::from_toml(text, "classifier.toml").unwrap();
        assert!(rules.rule_names().count() > 40);
    }
}
