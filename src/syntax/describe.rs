//! Grammar rules in words. pest reports what it expected as rule names;
//! users only ever see these phrases. The match is exhaustive so that a new
//! rule cannot be added to the grammar without saying how to describe it.

use super::grammar::Rule;

/// What a rule looks like to a user, as it follows "expected".
pub fn describe(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "the end of the file",
        Rule::split
        | Rule::split_token
        | Rule::bom
        | Rule::newline
        | Rule::hspace
        | Rule::comment
        | Rule::comment_text
        | Rule::open_brace
        | Rule::close_brace
        | Rule::open_bracket
        | Rule::close_bracket
        | Rule::item_keyword
        | Rule::item_word
        | Rule::resync_word
        | Rule::other_run => "a declaration such as `journey`, `segment` or `template`",
        Rule::WHITESPACE | Rule::spaces => "whitespace",
        Rule::ident_start | Rule::ident_char | Rule::ident | Rule::name => "a name",
        Rule::string | Rule::string_text | Rule::quoted => "a string such as `\"Welcome\"`",
        Rule::number => "a number",
        Rule::duration
        | Rule::duration_word
        | Rule::wordy_duration
        | Rule::duration_slot
        | Rule::long_unit
        | Rule::short_unit => "a duration such as `1h` or `2d`",
        Rule::timestamp => "a timestamp such as `2026-12-24T09:00:00Z`",
        Rule::time_of_day => "a time of day such as `09:00`",
        Rule::percent => "a percentage such as `10%`",
        Rule::count => "a whole number",
        Rule::weekday => "a weekday such as `monday`",
        Rule::type_name | Rule::type_expr => {
            "a type such as `string`, `number`, `bool`, `timestamp`, `duration` or `list<string>`"
        }
        Rule::lbrace | Rule::block | Rule::object_type => "`{`",
        Rule::rbrace => "`}`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::colon => "`:`",
        Rule::comma => "`,`",
        Rule::eq_sign => "`=`",
        Rule::langle => "`<`",
        Rule::rangle => "`>`",
        Rule::question => "`?`",
        Rule::kw_event => "`event`",
        Rule::kw_profile | Rule::set_path => "`profile`",
        Rule::kw_channel | Rule::template_channel => "`channel`",
        Rule::kw_template => "`template`",
        Rule::kw_segment => "`segment`",
        Rule::kw_policy => "`policy`",
        Rule::kw_attribution => "`attribution`",
        Rule::kw_conversion | Rule::attribution_conversion => "`conversion`",
        Rule::kw_value | Rule::attribution_value => "`value`",
        Rule::kw_window | Rule::attribution_window => "`window`",
        Rule::kw_half | Rule::attribution_half_life => "`half life`",
        Rule::kw_life => "`life`",
        Rule::kw_journey => "`journey`",
        Rule::kw_list | Rule::list_type => "`list`",
        Rule::kw_address | Rule::channel_address => "`address`",
        Rule::kw_consent | Rule::channel_consent => "`consent`",
        Rule::kw_subject | Rule::template_subject => "`subject`",
        Rule::kw_body | Rule::template_body => "`body`",
        Rule::kw_html | Rule::template_html => "`html`",
        Rule::kw_name => "`name`",
        Rule::kw_trigger => "`trigger`",
        Rule::kw_no => "`no`",
        Rule::kw_any => "`any`",
        Rule::kw_for => "`for`",
        Rule::kw_where | Rule::where_clause | Rule::wait_where => "`where`",
        Rule::kw_audience => "`audience`",
        Rule::kw_reentry => "`reentry`",
        Rule::kw_never => "`never`",
        Rule::kw_always => "`always`",
        Rule::kw_after => "`after`",
        Rule::kw_before => "`before`",
        Rule::kw_every => "`every`",
        Rule::kw_day => "`day`",
        Rule::kw_at | Rule::trigger_at => "`at`",
        Rule::kw_anniversary => "`anniversary`",
        Rule::kw_of => "`of`",
        Rule::kw_enters => "`enters`",
        Rule::kw_leaves => "`leaves`",
        Rule::kw_exit => "`exit`",
        Rule::kw_on => "`on`",
        Rule::kw_if => "`if`",
        Rule::kw_else | Rule::else_block => "`else`",
        Rule::else_if => "`else if`",
        Rule::kw_goal => "`goal`",
        Rule::kw_within => "`within`",
        Rule::kw_holdout => "`holdout`",
        Rule::kw_allow | Rule::allow_clause => "`allow`",
        Rule::kw_cap => "`cap`",
        Rule::kw_messages => "`messages`",
        Rule::kw_per => "`per`",
        Rule::kw_quiet => "`quiet`",
        Rule::kw_hours => "`hours`",
        Rule::kw_hour => "`hour`",
        Rule::kw_best => "`best`",
        Rule::kw_to => "`to`",
        Rule::kw_in => "`in`",
        Rule::kw_wait => "`wait`",
        Rule::kw_until => "`until`",
        Rule::kw_send => "`send`",
        Rule::kw_or => "`or`",
        Rule::kw_with | Rule::with_block => "`with`",
        Rule::kw_as | Rule::send_as => "`as`",
        Rule::kw_transactional | Rule::send_transactional => "`transactional`",
        Rule::kw_capped => "`capped`",
        Rule::send_on_capped => "`on capped`",
        Rule::send_best_hour => "`at best hour`",
        Rule::kw_skip => "`skip`",
        Rule::kw_split => "`split`",
        Rule::kw_repeat => "`repeat`",
        Rule::kw_times => "`times`",
        Rule::kw_set => "`set`",
        Rule::kw_emit => "`emit`",
        Rule::kw_add => "`add`",
        Rule::kw_remove => "`remove`",
        Rule::kw_from => "`from`",
        Rule::kw_true => "`true`",
        Rule::kw_false => "`false`",
        Rule::kw_null => "`null`",
        Rule::item_chunk
        | Rule::item
        | Rule::event_schema
        | Rule::profile_schema
        | Rule::channel_decl
        | Rule::template_decl
        | Rule::segment_decl
        | Rule::policy_decl
        | Rule::attribution_decl
        | Rule::journey_decl => "a declaration such as `journey`, `segment` or `template`",
        Rule::event_ref | Rule::event_name => "an event name",
        Rule::field_decl => "a field such as `email: string`",
        Rule::header
        | Rule::name_clause
        | Rule::trigger_clause
        | Rule::trigger_absence
        | Rule::trigger_every
        | Rule::trigger_date
        | Rule::trigger_anniversary
        | Rule::trigger_segment
        | Rule::audience_clause
        | Rule::reentry_clause
        | Rule::per_clause
        | Rule::exit_on
        | Rule::exit_if
        | Rule::goal_clause
        | Rule::header_start
        | Rule::holdout_clause => "a header clause such as `trigger` or `goal`",
        Rule::cap_clause => "`cap`",
        Rule::quiet_hours => "`quiet hours`",
        Rule::step
        | Rule::wait_step
        | Rule::send_step
        | Rule::if_step
        | Rule::split_step
        | Rule::repeat_step
        | Rule::set_step
        | Rule::emit_step
        | Rule::audience_add
        | Rule::audience_remove
        | Rule::exit_step => "a step such as `wait`, `send` or `if`",
        Rule::wait_for_engagement | Rule::wait_for_event => "`for`",
        Rule::wait_until_time | Rule::wait_until_expr => "`until`",
        Rule::handle_ref => "a message handle such as `reminder.opened`",
        Rule::wait_alt => "an event name",
        Rule::send_alt => "a channel and a template, such as `email welcome`",
        Rule::with_entry => "a key such as `code: \"SAVE10\"`",
        Rule::split_arm => "a split branch such as `50% a { ... }`",
        Rule::expr
        | Rule::wait_condition
        | Rule::primary
        | Rule::paren
        | Rule::list
        | Rule::call
        | Rule::path
        | Rule::path_root
        | Rule::reserved
        | Rule::prefix_op
        | Rule::op_not
        | Rule::op_neg => "an expression",
        Rule::infix_op
        | Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_le
        | Rule::op_lt
        | Rule::op_ge
        | Rule::op_gt
        | Rule::op_not_in
        | Rule::op_in
        | Rule::op_contains
        | Rule::op_assign
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div => "an operator such as `==` or `and`",
    }
}
