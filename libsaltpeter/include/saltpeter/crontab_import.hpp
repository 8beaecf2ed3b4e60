#pragma once
// Crontab import: converts a classic crontab (a user's `crontab -l`, /etc/crontab or a file of
// /etc/cron.d) into a saltpeter job file. Pure: text in, YAML text and problems out. Used by
// `spctl import-crontab`.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "saltpeter/config.hpp"

namespace saltpeter {

/// How a crontab is converted.
struct CrontabImportOptions {
    /// The Salt target every converted job runs on (required: a crontab belongs to one host).
    std::string targets;
    TargetType target_type = TargetType::glob;
    /// true: the 6th field of each line is the user (/etc/crontab, /etc/cron.d); it becomes `user:`.
    bool system_crontab = false;
    /// The crontab's name in problems and in the header comment (e.g. its path).
    std::string origin = "crontab";
};

/// The converted file.
struct CrontabImport {
    /// A complete saltpeter YAML document: a header comment, then one job per schedule line with
    /// min/hour/dom/mon/dow keys (sec 0; macros expanded, the macro kept as a comment), `timeout: 0`
    /// (cron never stops a job), the environment assignments in force as `env:`, CRON_TZ as
    /// `timezone:`. The crontab's comments stay as YAML comments; a line that cannot be converted
    /// is kept as a comment too.
    std::string yaml;
    /// One per line that could not be converted (error: the line is left out) or was converted
    /// with a loss (warning, e.g. MAILTO). `file` is options.origin, `line` the crontab line.
    std::vector<Problem> problems;
    std::size_t jobs = 0;  ///< jobs written
};

/// Converts `text`. Job names come from the command's program name (lower case, [a-z0-9_], unique
/// within the file: "backup", "backup_2"). Handles 5-field lines, @yearly/@annually/@monthly/
/// @weekly/@daily/@midnight/@hourly, `\%` in commands; reports @reboot, an unescaped `%` (cron's
/// stdin), bad fields and short lines. Never throws on bad input.
CrontabImport import_crontab(std::string_view text, const CrontabImportOptions& options);

/// A job name made from a shell command: the base name of its first word that is not a variable
/// assignment, lower-cased, with every other character turned into '_' ("/usr/bin/run-parts
/// /etc/x" gives "run_parts"). Never empty: "job" when nothing usable is left; prefixed with
/// "job_" when it would start with a digit or is a reserved section name.
std::string job_name_from_command(std::string_view command);

}  // namespace saltpeter
