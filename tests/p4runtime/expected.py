"""Where a target departs from the P4Runtime spec: the expected-result table of the suite.

A case asserts the spec's outcome unless this table records another for the target it
runs against; then it asserts that target's recorded behaviour, so a departure is
still checked (it would fail if the target changed), never skipped.
docs/p4runtime-conformance.md lists every entry (a test checks that it does).

Outcomes are short strings: a status name ("INVALID_ARGUMENT"), "ended:CODE" for a
stream the server ended, or a word a case defines ("forwarded", "dropped", ...).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Departure:
    """What `target` does instead of what the spec asks, and why we know."""

    observed: str
    note: str


def _bmv2(observed: str, note: str) -> dict[str, Departure]:
    return {"bmv2": Departure(observed, note)}


#: case id ("test_name" or "test_name:part") -> target -> departure
DEPARTURES: dict[str, dict[str, Departure]] = {
    # §5 arbitration: PI's server makes the live client with the highest election id
    # primary (a std::set ordered by id), knows no roles, and creates any device it is
    # asked about
    "test_unknown_device_ends_the_stream": _bmv2(
        "OK", "creates the device and makes the client its primary"),
    "test_a_role_config_without_an_agreed_scheme_ends_the_stream": _bmv2(
        "OK", "ignores roles: the client is arbitrated as in the default role"),
    "test_when_the_primary_leaves_there_is_no_primary_until_one_is_elected:notice": _bmv2(
        "OK@low", "promotes the live backup with the next highest id at once"),
    "test_when_the_primary_leaves_there_is_no_primary_until_one_is_elected:write": _bmv2(
        "OK", "the promoted backup may write"),
    "test_when_the_primary_leaves_there_is_no_primary_until_one_is_elected:again": _bmv2(
        "no notice", "the same election id again changes nothing and is not answered"),
    "test_a_primary_that_lowers_its_election_id_becomes_a_backup": _bmv2(
        "OK@lowered", "the only live client stays primary whatever its id"),
    "test_an_unset_election_id_is_never_primary": _bmv2(
        "OK@0", "an unset election id counts as 0 and can be primary"),
    # §8.3 bytestrings
    "test_an_empty_bytestring_is_refused": _bmv2("OK", "reads an empty bytestring as 0"),
    "test_action_params_must_match_the_p4info:empty": _bmv2(
        "OK", "reads an empty bytestring as 0"),
    # §9.1 table entries
    "test_a_keyless_table_takes_no_match_entry": _bmv2(
        "UNKNOWN", "the target's refusal, not INVALID_ARGUMENT"),
    "test_is_const_in_a_write_is_refused": _bmv2("OK", "ignores is_const"),
    "test_a_full_table_refuses_more_entries": _bmv2(
        "UNKNOWN", "the target's table-full error, not RESOURCE_EXHAUSTED"),
    "test_a_dont_care_range_field_must_be_omitted": _bmv2(
        "OK", "accepts a range field that covers every value"),
    "test_a_modify_without_action_keeps_the_action": _bmv2(
        "INVALID_ARGUMENT", "a MODIFY must carry an action"),
    "test_a_read_filtered_by_priority_returns_that_priority": _bmv2(
        "unfiltered", "ignores the priority filter"),
    "test_a_read_filtered_by_action_returns_that_action": _bmv2(
        "2", "ignores the action filter (both entries come back)"),
    # §9.3 counters
    "test_a_modify_without_index_sets_every_cell": _bmv2(
        "UNIMPLEMENTED", "a counter write needs an index"),
    "test_a_modify_without_data_changes_nothing": _bmv2(
        "zeroed", "an unset data writes 0"),
    "test_counter_entries_are_only_modified:DELETE": _bmv2(
        "OK", "DELETE of a counter entry is accepted (INSERT is refused)"),
    "test_an_index_past_the_end_is_out_of_range:write": _bmv2(
        "UNKNOWN", "the target's index error, not OUT_OF_RANGE"),
    "test_an_index_past_the_end_is_out_of_range:read": _bmv2(
        "UNKNOWN", "the target's index error, not OUT_OF_RANGE"),
    "test_the_direct_counter_of_a_missing_entry_is_not_found:read": _bmv2(
        "INVALID_ARGUMENT", "INVALID_ARGUMENT instead of NOT_FOUND"),
    "test_the_direct_counter_of_a_missing_entry_is_not_found:write": _bmv2(
        "INVALID_ARGUMENT", "INVALID_ARGUMENT instead of NOT_FOUND"),
    "test_direct_counter_entries_are_only_modified:DELETE": _bmv2(
        "OK", "DELETE of a direct counter entry is accepted (INSERT is refused)"),
    # §9.7 registers: PI implements no RegisterEntry
    "test_a_register_cell_is_written_and_read": _bmv2(
        "UNIMPLEMENTED", "no RegisterEntry support"),
    "test_a_write_without_index_sets_every_cell": _bmv2(
        "UNIMPLEMENTED", "no RegisterEntry support"),
    "test_a_register_index_past_the_end_is_out_of_range:write": _bmv2(
        "UNIMPLEMENTED", "no RegisterEntry support"),
    "test_a_register_index_past_the_end_is_out_of_range:read": _bmv2(
        "UNIMPLEMENTED", "no RegisterEntry support"),
    "test_a_negative_register_index_is_invalid": _bmv2(
        "UNIMPLEMENTED", "no RegisterEntry support"),
    "test_register_data_must_match_its_type:width": _bmv2(
        "UNIMPLEMENTED", "no RegisterEntry support"),
    "test_register_data_must_match_its_type:type": _bmv2(
        "UNIMPLEMENTED", "no RegisterEntry support"),
    # §12 / §13 Write and Read
    "test_a_write_to_an_unknown_device_is_not_found": _bmv2(
        "PERMISSION_DENIED", "creates the device, which then has no primary"),
    "test_a_write_for_an_unknown_role_is_not_found": _bmv2("OK", "ignores roles"),
    "test_an_update_without_entity_is_refused": _bmv2(
        "UNKNOWN", "UNKNOWN instead of INVALID_ARGUMENT"),
    "test_a_read_of_an_unknown_device_is_not_found": _bmv2(
        "FAILED_PRECONDITION", "creates the device, which has no pipeline"),
    "test_an_entity_without_kind_is_refused": _bmv2(
        "UNKNOWN", "UNKNOWN instead of INVALID_ARGUMENT"),
    "test_a_read_batch_reports_one_error_per_request": _bmv2(
        "INVALID_ARGUMENT::1", "stops at the first failing request and answers its code "
        "for the whole Read, without per-request errors; the requests after it are not "
        "read"),
    # §14 / §15 pipeline config
    "test_verify_refuses_a_config_that_cannot_be_realized": _bmv2(
        "OK", "VERIFY does not check the device config"),
    "test_a_config_is_needed:VERIFY": _bmv2("OK", "VERIFY without a config succeeds"),
    "test_a_config_is_needed:VERIFY_AND_SAVE": _bmv2(
        "UNKNOWN", "the target's update error instead of INVALID_ARGUMENT"),
    "test_a_config_is_needed:VERIFY_AND_COMMIT": _bmv2(
        "OK", "VERIFY_AND_COMMIT without a config succeeds"),
    "test_commit_with_a_config_is_refused": _bmv2(
        "OK", "COMMIT ignores a config given with it"),
    "test_setting_the_pipeline_of_an_unknown_device_is_not_found": _bmv2(
        "PERMISSION_DENIED", "creates the device, which then has no primary"),
    "test_commit_without_a_saved_config_is_not_found": _bmv2(
        "UNKNOWN", "the target's update error instead of NOT_FOUND"),
    "test_reconcile_and_commit_of_the_same_pipeline_keeps_the_state": _bmv2(
        "UNKNOWN", "fails, and every later SetForwardingPipelineConfig fails too"),
    "test_without_a_pipeline_the_config_is_unset": _bmv2(
        "FAILED_PRECONDITION", "an error instead of an unset config"),
    "test_getting_the_pipeline_of_an_unknown_device_is_not_found": _bmv2(
        "FAILED_PRECONDITION", "creates the device, which has no pipeline"),
    # §16 / §17
    "test_a_packet_out_missing_a_metadata_field_is_dropped": _bmv2(
        "forwarded", "fills a missing field with 0 (a TODO in PI's packet_io_mgr)"),
    "test_a_packet_out_with_a_metadata_field_twice_is_dropped": _bmv2(
        "forwarded", "the last value of a repeated field wins"),
    "test_capabilities_of_an_unknown_device_are_not_found": _bmv2(
        "OK", "ignores the device id"),
    # p4runtime-shell, the same behaviours seen by another client
    "test_p4runtime_shell_session:priority": _bmv2(
        "unfiltered", "ignores the priority filter"),
    "test_p4runtime_shell_session:counter": _bmv2(
        "UNKNOWN", "the target's index error, not OUT_OF_RANGE"),
}


def expected(case: str, target: str, spec: str) -> str:
    """The outcome to assert for `case` on `target`: the spec's unless recorded."""
    departure = DEPARTURES.get(case, {}).get(target)
    return spec if departure is None else departure.observed
