import { z } from "zod";

/** The name of an experiment or a table: it becomes a directory under runs/ by default, so it is one path
 * component, and not "." or ".." (a table named ".." would be written into the working directory). */
export const DirName = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\w.-]+$/, "letters, digits, '.', '_' and '-' only")
  .refine((n) => !/^\.+$/.test(n), "not only dots: it names a directory");
