/**
 * How the server tells names apart: two names are one when their confusable skeletons (Unicode
 * TR39) are equal, so `ann` in Latin letters, `аnn` with a Cyrillic `а`, `Ann` and `ＡＮＮ` all
 * belong to whoever holds one of them, and nobody can pose as `server`. The skeleton comes from
 * `npm:unhomoglyph` (the confusables table Matrix's SDK uses), taken after NFKC, then case folded,
 * and both once more: the table maps some capitals (Greek `Α`, `Ν`) but not their small forms, and
 * folding can make new look-alikes, so `ΑΝΝ` meets `ann` and `Iann` meets `lann`.
 *
 * @module
 */

import unhomoglyph from "unhomoglyph";
import { foldCase, RESERVED_NAMES } from "../protocol.ts";

/**
 * The key a name is held, registered and banned by: its confusable skeleton. Names the rules
 * accept are short, so this is cheap; callers pass only checked names or bounded input.
 */
export function nameSkeleton(name: string): string {
  return skeletonStep(skeletonStep(name.normalize("NFKC")));
}

/** One round: map each character to its prototype, normalise (NFKC), fold case. */
function skeletonStep(text: string): string {
  return foldCase(unhomoglyph(text).normalize("NFKC"));
}

const RESERVED_SKELETONS: ReadonlySet<string> = new Set([...RESERVED_NAMES].map(nameSkeleton));

/** Whether a name looks like a reserved one (`server`, `admin`...), in any script or case. */
export function looksReserved(name: string): boolean {
  return RESERVED_SKELETONS.has(nameSkeleton(name));
}
